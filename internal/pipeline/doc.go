// Package pipeline holds what the consuming stages share: fetching a batch of records from a
// kafka-go reader (block for the first, then take what arrives within a short wait), preparing the
// next batch while the current one is made durable (Prefetch), and building dead-letter records
// with their reasons.
package pipeline
