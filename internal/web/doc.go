// Package web serves the hub's own front ends: the services navigator for residents at
// /navigator/ and the contact-centre console for operators at /console/. Their assets are
// embedded; the pages read only the hub's HTTP API (the HSDS read API, the change stream, and for
// the console the operator-scoped resident APIs), so they show what any other front end could.
//
// The package owns the search-analytics table (which categories residents look for, per day and
// district, no personal data), counted in Prometheus metrics and served at GET /v1/stats/searches.
package web
