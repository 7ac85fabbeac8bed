// Package dlq owns the dead-letter index: the table dlq_dead_letters, filled by an Indexer that
// consumes the dlq topic, read by operators through Store (filters, keyset paging, counts per
// source and reason), and worked off by a Replayer that sends fixed records through the pipeline
// again — the original back to raw for records validate or resolve rejected, a full re-run of the
// source for records the connector rejected or for a whole source whose config was fixed. A dead
// letter is open until it is replayed, and resolved once a later version of its record reached
// the catalog. Handler serves all of it under /v1/dlq.
package dlq
