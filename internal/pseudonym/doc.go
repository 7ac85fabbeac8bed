// Package pseudonym turns a resident's national id (СНИЛС) into the pseudonym the hub keys
// residents by: the keyed HMAC-SHA256 of the normalized number, in lowercase hex. The key is a
// secret of the deployment (SOCIALHUB_PSEUDONYM_KEY); without it a pseudonym cannot be linked back
// to a person, and with it the same person always gets the same pseudonym, so connectors compute
// it at the edge and raw national ids never enter Kafka or the database. The lookups API uses the
// same function to find the resident a request names.
package pseudonym
