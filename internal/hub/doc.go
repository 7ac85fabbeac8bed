// Package hub wires the hub's parts into one running process: PostgreSQL (embedded or external),
// migrations, Kafka (embedded or external) and its topics, the connectors on their schedules, the
// validate and resolve stages, the outbox relay and the HTTP API. cmd/socialhub only reads the
// configuration and calls Run; tests start the same Hub in process.
package hub
