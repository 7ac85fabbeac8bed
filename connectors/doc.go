// Package connectors owns the Source contract every kind of source implements, the registry of
// kinds, the runner that moves a source's records to the raw topic and checkpoints the source's
// position in PostgreSQL (table connector_checkpoints) only after Kafka acknowledged them, and the
// shared acceptance suite (package connectortest) every kind passes.
package connectors
