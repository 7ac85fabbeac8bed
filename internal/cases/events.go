package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"socialhub/internal/catalog"
)

// StatusEvent is a status a department reports, with its own event id.
type StatusEvent struct {
	EventID    string    `json:"event_id"`
	Status     string    `json:"status"`
	OccurredAt time.Time `json:"occurred_at"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason,omitempty"`
}

// maxSkew is how far in the future an event time may lie: a department's clock may run ahead a
// little; an event dated days ahead is a mistake that would pin the case's status.
const maxSkew = 10 * time.Minute

func (e *StatusEvent) check(field string, now time.Time) FieldErrors {
	var errs FieldErrors
	e.EventID, e.Actor, e.Reason = strings.TrimSpace(e.EventID), strings.TrimSpace(e.Actor), strings.TrimSpace(e.Reason)
	switch {
	case e.EventID == "":
		errs = append(errs, FieldError{field + "event_id", "required: the department's own id of the event"})
	case len(e.EventID) > 128 || !utf8.ValidString(e.EventID):
		errs = append(errs, FieldError{field + "event_id", "at most 128 bytes of text"})
	case strings.HasPrefix(e.EventID, hubEventPrefix):
		errs = append(errs, FieldError{field + "event_id", "ids starting with " + hubEventPrefix + " are the hub's"})
	}
	if !slices.Contains(DepartmentStatuses, e.Status) {
		errs = append(errs, FieldError{field + "status", "must be one of " + strings.Join(DepartmentStatuses, ", ")})
	}
	switch {
	case e.OccurredAt.IsZero():
		errs = append(errs, FieldError{field + "occurred_at", "required (RFC 3339)"})
	case e.OccurredAt.After(now.Add(maxSkew)):
		errs = append(errs, FieldError{field + "occurred_at", "lies in the future"})
	}
	if e.Actor == "" || utf8.RuneCountInString(e.Actor) > maxShort || !utf8.ValidString(e.Actor) {
		errs = append(errs, FieldError{field + "actor", fmt.Sprintf("required: who acted (at most %d characters)", maxShort)})
	}
	if e.Status == StatusRefused && e.Reason == "" {
		errs = append(errs, FieldError{field + "reason", "required when the status is refused"})
	}
	if utf8.RuneCountInString(e.Reason) > maxRequest || !utf8.ValidString(e.Reason) {
		errs = append(errs, FieldError{field + "reason", fmt.Sprintf("at most %d characters", maxRequest)})
	}
	e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	return errs
}

// Outcomes of a reported event.
const (
	OutcomeRecorded  = "recorded"
	OutcomeDuplicate = "duplicate" // the same event id was recorded before, with the same content
)

// Outcome says what became of one reported event.
type Outcome struct {
	EventID string `json:"event_id"`
	Outcome string `json:"outcome"`
}

// Report records status events of a case for the organization reporting them (reportedBy names
// the client or source). Events already recorded under their id are duplicates and change
// nothing; an id recorded with another status or time is ErrConflict and nothing of the batch is
// recorded. It returns the case as it now stands.
func (s *Store) Report(ctx context.Context, caseID, organization, reportedBy string, evs []StatusEvent) (Case, []Outcome, error) {
	now := s.now()
	var errs FieldErrors
	for i := range evs {
		errs = append(errs, evs[i].check(fmt.Sprintf("events[%d].", i), now)...)
	}
	if len(evs) == 0 {
		errs = append(errs, FieldError{"events", "at least one event is required"})
	}
	if len(errs) > 0 {
		return Case{}, nil, errs
	}
	if _, err := uuid.Parse(caseID); err != nil {
		return Case{}, nil, fmt.Errorf("%w: %s", ErrNotFound, caseID)
	}
	tx, err := s.opts.Pool.Begin(ctx)
	if err != nil {
		return Case{}, nil, fmt.Errorf("error beginning a transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	c, outcomes, chs, err := s.apply(ctx, tx, caseID, organization, reportedBy, evs)
	if err != nil {
		return Case{}, nil, err
	}
	if err := s.opts.Outbox.Append(ctx, tx, chs); err != nil {
		return Case{}, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Case{}, nil, fmt.Errorf("error committing events of case %s: %w", caseID, err)
	}
	return c, outcomes, nil
}

// apply records events in tx and returns the case, the outcomes and the change events to append.
// The case row is locked first, so concurrent reports of one case take turns and versions stay
// gapless.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, caseID, organization, reportedBy string, evs []StatusEvent) (Case, []Outcome, []catalog.Change, error) {
	c, err := s.scanCase(tx.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE id = $1::uuid FOR UPDATE`, caseID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Case{}, nil, nil, fmt.Errorf("%w: %s", ErrNotFound, caseID)
	}
	if err != nil {
		return Case{}, nil, nil, fmt.Errorf("error reading case %s: %w", caseID, err)
	}
	if c.Organization.ID != organization {
		return Case{}, nil, nil, fmt.Errorf("%w: case %s is routed to %s, not %s", ErrNotRouted, c.CaseNumber, c.Organization.ID, organization)
	}
	if c.History, err = history(ctx, tx, c.ID); err != nil {
		return Case{}, nil, nil, err
	}
	now := s.now()
	outcomes := make([]Outcome, 0, len(evs))
	var chs []catalog.Change
	for _, ev := range evs {
		if i := slices.IndexFunc(c.History, func(h Event) bool { return h.EventID == ev.EventID }); i >= 0 {
			h := c.History[i]
			if h.Status != ev.Status || !h.OccurredAt.Equal(ev.OccurredAt) {
				return Case{}, nil, nil, fmt.Errorf("%w: event %s of case %s was recorded as %s at %s",
					ErrConflict, ev.EventID, c.CaseNumber, h.Status, h.OccurredAt.Format(time.RFC3339))
			}
			outcomes = append(outcomes, Outcome{ev.EventID, OutcomeDuplicate})
			continue
		}
		e := Event{EventID: ev.EventID, Status: ev.Status, OccurredAt: ev.OccurredAt, Actor: ev.Actor, Reason: ev.Reason,
			ReportedBy: reportedBy, ReceivedAt: now}
		if err := insertEvent(ctx, tx, c.ID, e); err != nil {
			return Case{}, nil, nil, err
		}
		before := c.Status
		c.History = append(c.History, e)
		s.setCurrent(&c)
		c.Version++
		// One change event per history entry, the op naming the status reported: a late event
		// still changes the history, though not the current status.
		chs = append(chs, changeOf(&c, ev.Status, e, c.Status != before))
		outcomes = append(outcomes, Outcome{ev.EventID, OutcomeRecorded})
	}
	if len(chs) > 0 {
		c.UpdatedAt = now
		_, err := tx.Exec(ctx, `UPDATE cases SET status = $2, status_at = $3, deadline_at = $4, version = $5, updated_at = $6
			WHERE id = $1::uuid`, c.ID, c.Status, c.StatusAt, c.DeadlineAt, c.Version, now)
		if err != nil {
			return Case{}, nil, nil, fmt.Errorf("error updating case %s: %w", c.CaseNumber, err)
		}
	}
	return c, outcomes, chs, nil
}

// Record is a pulled status record as the resolve stage hands it over: the data of an
// application_event (see RecordDoc), from a source.
type Record struct {
	Source string
	Data   json.RawMessage
}

// RecordDoc is the document of an application_event record (schemas/application_event.json): the
// casestatus connector writes it from a department's feed.
type RecordDoc struct {
	ApplicationID string `json:"application_id"`
	Organization  string `json:"organization"`
	StatusEvent
}

// ApplyRecords applies pulled status records inside the caller's transaction and returns the
// change events, which the caller appends to the outbox in the same transaction. A record that
// cannot be applied (malformed, an unknown case, a case routed elsewhere, an id recorded with
// other content) is an error wrapping ErrInvalidRecord: the caller dead-letters it. Records
// already recorded change nothing, so replaying the topic changes nothing.
func (s *Store) ApplyRecords(ctx context.Context, tx pgx.Tx, recs []Record) ([]catalog.Change, error) {
	var out []catalog.Change
	now := s.now()
	for _, r := range recs {
		var d RecordDoc
		if err := json.Unmarshal(r.Data, &d); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidRecord, r.Source, err)
		}
		if errs := d.check("", now); len(errs) > 0 {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidRecord, r.Source, errs)
		}
		if _, err := uuid.Parse(d.ApplicationID); err != nil {
			return nil, fmt.Errorf("%w: %s: application_id %q is not a case id", ErrInvalidRecord, r.Source, d.ApplicationID)
		}
		_, _, chs, err := s.apply(ctx, tx, d.ApplicationID, d.Organization, r.Source, []StatusEvent{d.StatusEvent})
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotRouted) || errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidRecord, r.Source, err)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, chs...)
	}
	return out, nil
}
