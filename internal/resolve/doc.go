// Package resolve is the resolve stage: it reads the valid topic, upserts the catalog, appends the
// change events to the outbox and stores its own Kafka offsets (table resolve_offsets), all in one
// PostgreSQL transaction. kafka-go's ConsumerGroup assigns partitions; PostgreSQL, not Kafka, holds
// the position, and the conditional update on the previous offset fences a stale consumer.
package resolve
