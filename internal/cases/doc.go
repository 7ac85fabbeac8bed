// Package cases owns applications and their case files: the tables cases (one row per application,
// with where it was routed and where it stands), case_events (every status a department reported,
// idempotent by the department's event id) and case_counters (the yearly sequence of case
// numbers), and the rules that route, refuse and time them (schemas/case_rules.json, overridable).
//
// An application comes in from the contact centre (POST /v1/applications): the resident is
// pseudonymized on arrival, eligibility is checked and reported without refusing to record the
// request, the case is routed to the organization responsible for the service's category in the
// resident's registration district, and a change event "application.submitted" is appended to the
// outbox in the same transaction. The department's system learns of it from the change machinery
// (Kafka topic changes, SSE, webhooks) and reads the case itself through the API: change events are
// thin (no pseudonym, no request text, no contact), so every read of personal data is authorized
// and audited.
//
// Statuses come back pushed (POST /v1/applications/{id}/events, by a client of the routed
// organization) or pulled (the casestatus connector kind, whose application_event records the
// resolve stage hands to ApplyRecords in its own transaction). A history is ordered by the time an
// event happened, not by when it arrived; the same department event id twice is recorded once;
// the current status is the latest by event time. Every new history entry is one change event.
package cases
