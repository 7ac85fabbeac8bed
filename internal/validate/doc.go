// Package validate is the validate stage: it reads the raw topic as a consumer group, checks each
// record's envelope and its data against the JSON Schema profile in schemas/ — in the version the
// event's dataschema claims, then upgraded to the current one — writes valid records to the valid
// topic and invalid ones to dlq with every reason, and commits its position only after Kafka
// acknowledged what it wrote (and its Tally counted the batch).
//
// Checker is the check itself (normalize, validate, upgrade, canonical JSON, content hash), shared
// by the stage and by Handler, which serves it to data owners on POST /v1/validate beside the
// schemas (GET /v1/schemas): what the endpoint passes, the pipeline passes.
package validate
