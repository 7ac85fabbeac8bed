// Package eligibility owns the eligibility store: the table eligibility_residents, which holds what
// the residents' registry says about each resident (registration address, household, disability,
// pension, low-income and large-family status), keyed by the resident's pseudonym, with the
// resident's eligibility under the loaded rules in the same row, and every query on it. The
// resolve stage writes it with Apply in the same transaction as its Kafka offsets; the lookups API
// reads it to answer "is this resident …?" without paper certificates.
package eligibility
