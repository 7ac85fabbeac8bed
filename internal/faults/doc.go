// Package faults proves DESIGN's delivery invariants under faults. It owns the checker that, from
// a generator's manifest, verifies after a scenario that no record was lost, none is canonically
// doubled, the resolve stage's stored offsets equal what it applied, every poison record is on
// dlq, and per-entity versions on the changes topic never go backwards. Its tests are the fault
// scenarios (broker restarted on its data directory, PostgreSQL stopped with -m immediate, poison
// records, duplicate delivery and a consumer group reset, consumers joining and leaving); their
// size comes from SOCIALHUB_FAULTS_ROWS so make test runs them short and make faults large.
package faults
