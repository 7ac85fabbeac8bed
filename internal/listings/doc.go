// Package listings lets NGOs keep their own listings in the city catalog without a clerk. It owns
// the tables listings (every listing an NGO pushed, whose it is and the last event that carried
// it) and listing_feeds (the HSDS feeds NGOs registered), and serves:
//
//   - PUT, DELETE and GET /v1/listings/{external_id}: an NGO client bound to its organization
//     pushes an HSDS service with its locations. The document is checked at once with the
//     validate stage's own Checker (422 with every reason), the client's organization is forced
//     onto it, and it is published to raw like any source's record, under the source
//     "ngo-<client id>", acknowledged by Kafka before the 202. GET tells where it stands:
//     accepted, applied, merged, in review, rejected (from the dead-letter index) or deleted.
//   - POST, GET /v1/feeds and GET, DELETE /v1/feeds/{id}: an NGO registers its own HSDS feed; the
//     hub runs it as an hsds source on a schedule (FeedSync hands the feeds to the scheduler)
//     and reports its last run.
//   - POST /v1/organizations/{id}/claim: an administrator binds an NGO client to an organization
//     the catalog already knows (from a grant list, say); the NGO's listings then carry its INN
//     and OGRN, so entity resolution merges them into it.
//
// An NGO touches only its own listings and feeds: another's, or a document naming another
// organization's identifiers, is refused with 403 and written to the audit log.
package listings
