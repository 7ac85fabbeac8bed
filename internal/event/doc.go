// Package event owns the hub's wire contract: every Kafka message is a CloudEvents 1.0 event in
// structured JSON mode, keyed by its partition key, with the extensions DESIGN.md names
// (contenthash, entitytype, op). It also names the topics and computes content hashes over the
// canonical JSON of an event's data, which is what makes every stage idempotent.
package event
