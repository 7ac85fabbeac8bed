// Package validate is the validate stage: it reads the raw topic as a consumer group, checks each
// record's envelope and its data against the JSON Schema profile in schemas/, writes valid records
// to the valid topic and invalid ones to dlq with every reason, and commits its position only after
// Kafka acknowledged what it wrote.
package validate
