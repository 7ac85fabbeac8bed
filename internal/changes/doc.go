// Package changes owns the outbox (table changes_outbox): change events are appended in the same
// transaction as the catalog change they describe, and the relay publishes them, in order, to the
// changes topic and the compacted catalog topic (DESIGN invariant 5: a committed change is never
// lost and never reordered per entity).
//
// It also serves the published changes to downstream apps that do not read Kafka: the feed
// (GET /v1/changes polling and GET /v1/changes/stream Server-Sent Events, by pub_seq, a sequence
// the relay hands out in publication order, with a retention window and its Pruner) and webhook
// subscriptions (tables webhook_subscriptions and webhook_deliveries, /v1/subscriptions, and the
// Deliverer that signs deliveries per the Standard Webhooks spec, keeps per-entity order, retries
// with back-off and pauses subscriptions that keep failing).
package changes
