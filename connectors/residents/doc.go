// Package residents is the `residents` kind of source: the city's residents' registry, read either
// from a table or view of the registry's own PostgreSQL database (mode: table; incrementally, by
// an (updated_at, id) keyset cursor, in pages) or from a full export file (mode: snapshot; CSV or
// JSONL from a path or an HTTP(S) URL, whose missing residents the runner turns into deletes).
//
// It pseudonymizes at the edge: the national id (СНИЛС) is normalized, checked and replaced by its
// keyed pseudonym (internal/pseudonym, key from SOCIALHUB_PSEUDONYM_KEY), which is the record's
// external id; only the facts eligibility needs leave the connector (registration address with
// district and okrug, registration date, date of birth, household, disability group, pensioner,
// low-income and large-family status). Names, passport numbers, phones and every other column
// are never read into a record. A row whose СНИЛС is invalid is rejected with its reason, and its
// record names only the row, not the number.
package residents
