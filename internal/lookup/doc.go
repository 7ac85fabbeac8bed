// Package lookup serves the registry lookups that replace paper certificates (POST /v1/lookups),
// a resident's eligible services (GET /v1/residents/{pseudonym}/eligible-services), a resident's
// access history (GET /v1/residents/{pseudonym}/access-log), and the attestation keys and their
// check (GET /.well-known/jwks.json, POST /v1/attestations/verify). It owns no table: it asks the
// eligibility store and the catalog, writes the audit log, and signs with the attestation keys.
//
// A lookup answers yes or no per claim with the date of the registry data, never the record, and
// only after the audit row is written: no answer leaves the hub unaudited. A national id sent as
// the subject is turned into its pseudonym on arrival and is never stored, logged or echoed.
package lookup
