// Package changes owns the outbox (table changes_outbox): change events are appended in the same
// transaction as the catalog change they describe, and the relay publishes them, in order, to the
// changes topic and the compacted catalog topic (DESIGN invariant 5: a committed change is never
// lost and never reordered per entity).
package changes
