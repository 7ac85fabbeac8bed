// Package hsds is the `hsds` kind of source: a client of any HSDS 3.0 API (Open Referral's Human
// Services Data Specification) — a department's system, or an NGO publishing its own feed for the
// hub to pull. It pages through /services (page, per_page; the page header's total_pages,
// page_number, last_page and contents), asks for fully nested services (the `full` parameter, or
// /services/{id} per service), and maps each HSDS service, with its organization, locations,
// addresses, phones, schedules and taxonomy terms, to the hub's record document. A full run is the
// feed's whole list (a snapshot, so vanished services become deletes); an incremental run asks only
// for what changed since the last complete run (modified_after).
package hsds
