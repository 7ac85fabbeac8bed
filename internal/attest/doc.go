// Package attest owns the attestation keys (the table attest_keys) and signs and verifies
// attestations: compact JWS (EdDSA, Ed25519) whose payload says what a client asked about a
// resident and what the hub answered, so the answer can replace a paper certificate and be checked
// later, offline, against the published JWKS.
//
// Keys live in PostgreSQL, so every replica of the API signs with the same current key and
// publishes the same set. The private half is sealed with AES-256-GCM under a master key the
// database never sees (SOCIALHUB_ATTEST_KEY, or a file in the data directory that MasterKey
// creates), so a copy of the database alone cannot forge attestations. Rotation makes a new key
// current and retires the old one, whose public half stays published until every attestation it
// signed has expired.
package attest
