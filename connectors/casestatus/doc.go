// Package casestatus is the connector kind that pulls the status events of applications from a
// department's system: an HTTP JSON feed of events, each mapped with JSON pointers to an
// application_event record (schemas/application_event.json) that the resolve stage hands to
// internal/cases. The feed is read incrementally: the cursor of the next page, sent back as a
// query parameter, is the source's position, so a run resumes where the last one stopped; events
// read twice are recorded once (by the department's event id).
package casestatus
