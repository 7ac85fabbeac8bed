package cases

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/catalog"
	"socialhub/internal/eligibility"
	"socialhub/internal/pseudonym"
	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "cases", FS: sub}
}

// EntityApplication is the entity type of the change events of a case.
const EntityApplication = "application"

// Change ops besides the statuses (a status change's op is the status reported).
const OpSubmitted = StatusSubmitted

// hubEventPrefix marks the hub's own history entries; departments may not use it.
const hubEventPrefix = "hub:"

// Services reads catalog services (*catalog.Store).
type Services interface {
	GetService(ctx context.Context, id string) (json.RawMessage, error)
}

// Outbox appends change events in the caller's transaction (*changes.Outbox).
type Outbox interface {
	Append(ctx context.Context, tx pgx.Tx, chs []catalog.Change) error
}

// Options configures a Store.
type Options struct {
	Pool        *pgxpool.Pool
	Rules       *Rules
	Catalog     Services
	Eligibility *eligibility.Store
	// Pseudonymizer turns a national id (СНИЛС) into the resident's pseudonym on arrival; without
	// it applications must name the resident by pseudonym.
	Pseudonymizer *pseudonym.Pseudonymizer
	Outbox        Outbox
	// Now is the clock (default time.Now); tests move it to make cases overdue.
	Now func() time.Time
}

// Store files applications and keeps their case files.
type Store struct {
	opts Options
}

// NewStore returns the store.
func NewStore(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts}
}

// Rules returns the rules the store routes by.
func (s *Store) Rules() *Rules { return s.opts.Rules }

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// Contact is how the resident asked to be contacted.
type Contact struct {
	Method string `json:"method"`
	Value  string `json:"value,omitempty"`
}

// Application is what the contact centre files.
type Application struct {
	Resident struct {
		// NationalID is the СНИЛС, pseudonymized at once and never stored or logged.
		NationalID string `json:"national_id,omitempty"`
		Pseudonym  string `json:"pseudonym,omitempty"`
	} `json:"resident"`
	ServiceID string  `json:"service_id"`
	Channel   string  `json:"channel"`
	Request   string  `json:"request"`
	Contact   Contact `json:"contact"`
}

// Filer is who files: the operator's API client and the purpose it declared.
type Filer struct {
	ClientID, ClientName, Purpose string
}

// RuleVerdict is an eligibility rule that governs the service, and what it says of the resident.
type RuleVerdict struct {
	Rule        string `json:"rule"`
	Eligible    bool   `json:"eligible"`
	Explanation string `json:"explanation"`
}

// Assessment is the eligibility check made at submission. It never refuses the application: an
// operator records the request and tells the resident which rule does not hold.
type Assessment struct {
	Eligible bool          `json:"eligible"`
	Rules    []RuleVerdict `json:"rules"`
}

// Event is an entry of a case's history.
type Event struct {
	EventID    string    `json:"event_id"`
	Status     string    `json:"status"`
	OccurredAt time.Time `json:"occurred_at"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason,omitempty"`
	ReportedBy string    `json:"reported_by"`
	ReceivedAt time.Time `json:"received_at"`
}

// Ref names a service or an organization.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Case is an application with its history, as the operator and the responsible department see it.
type Case struct {
	ID           string     `json:"id"`
	CaseNumber   string     `json:"case_number"`
	Resident     string     `json:"resident"` // pseudonym
	Service      Ref        `json:"service"`
	Categories   []string   `json:"categories"`
	District     string     `json:"district"`
	Okrug        string     `json:"okrug"`
	Organization Ref        `json:"organization"`
	Routing      Routing    `json:"routing"`
	Channel      string     `json:"channel"`
	Request      string     `json:"request"`
	Contact      Contact    `json:"contact"`
	Eligibility  Assessment `json:"eligibility"`
	FiledBy      string     `json:"filed_by"`
	Purpose      string     `json:"purpose"`
	Status       string     `json:"status"`
	StatusAt     time.Time  `json:"status_at"`
	Stage        Stage      `json:"stage"`
	DeadlineAt   *time.Time `json:"deadline_at,omitempty"`
	Overdue      bool       `json:"overdue"`
	Version      int64      `json:"version"`
	SubmittedAt  time.Time  `json:"submitted_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	History      []Event    `json:"history"`
}

var pseudonymPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Limits of free text.
const (
	maxRequest = 4000
	maxShort   = 200
)

func (a *Application) check(p *pseudonym.Pseudonymizer) (string, FieldErrors) {
	var errs FieldErrors
	var pseud string
	switch r := a.Resident; {
	case r.NationalID != "" && r.Pseudonym != "":
		errs = append(errs, FieldError{"resident", "give national_id or pseudonym, not both"})
	case r.NationalID != "":
		if p == nil {
			errs = append(errs, FieldError{"resident.national_id", "the hub has no pseudonym key: name the resident by pseudonym"})
			break
		}
		v, err := p.Pseudonym(r.NationalID)
		if err != nil {
			// Never echo the number: it must not reach logs or answers.
			errs = append(errs, FieldError{"resident.national_id", "not a valid СНИЛС"})
			break
		}
		pseud = v
	case r.Pseudonym != "":
		if !pseudonymPattern.MatchString(r.Pseudonym) {
			errs = append(errs, FieldError{"resident.pseudonym", "must be 64 lower-case hex digits"})
			break
		}
		pseud = r.Pseudonym
	default:
		errs = append(errs, FieldError{"resident", "national_id or pseudonym is required"})
	}
	a.ServiceID = strings.TrimSpace(a.ServiceID)
	if a.ServiceID == "" {
		errs = append(errs, FieldError{"service_id", "required"})
	}
	if !slices.Contains(Channels, a.Channel) {
		errs = append(errs, FieldError{"channel", "must be one of " + strings.Join(Channels, ", ")})
	}
	a.Request = strings.TrimSpace(a.Request)
	switch {
	case a.Request == "":
		errs = append(errs, FieldError{"request", "required: what the resident asks for, in their words"})
	case !utf8.ValidString(a.Request) || utf8.RuneCountInString(a.Request) > maxRequest:
		errs = append(errs, FieldError{"request", fmt.Sprintf("must be valid text of at most %d characters", maxRequest)})
	}
	if !slices.Contains(ContactMethods, a.Contact.Method) {
		errs = append(errs, FieldError{"contact.method", "must be one of " + strings.Join(ContactMethods, ", ")})
	}
	if !utf8.ValidString(a.Contact.Value) || utf8.RuneCountInString(a.Contact.Value) > maxShort {
		errs = append(errs, FieldError{"contact.value", fmt.Sprintf("must be valid text of at most %d characters", maxShort)})
	}
	return pseud, errs
}

type serviceDoc struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Attributes []struct {
		TaxonomyTermID string `json:"taxonomy_term_id"`
	} `json:"attributes"`
}

func (d serviceDoc) categories() []string {
	out := []string{}
	for _, a := range d.Attributes {
		if a.TaxonomyTermID != "" && !slices.Contains(out, a.TaxonomyTermID) {
			out = append(out, a.TaxonomyTermID)
		}
	}
	slices.Sort(out)
	return out
}

// Submit files an application: it pseudonymizes the resident, refuses a service excluded from
// the channel (ErrRefused with the rule's reason), checks eligibility (reported, never refused),
// routes the case by the resident's registration district, numbers it, and records it with its
// first history entry and its change event in one transaction.
func (s *Store) Submit(ctx context.Context, a Application, f Filer) (Case, error) {
	pseud, errs := a.check(s.opts.Pseudonymizer)
	if len(errs) > 0 {
		return Case{}, errs
	}
	raw, err := s.opts.Catalog.GetService(ctx, a.ServiceID)
	if errors.Is(err, catalog.ErrNotFound) {
		return Case{}, FieldErrors{{"service_id", "no service of the catalog has this id"}}
	}
	if err != nil {
		return Case{}, fmt.Errorf("error reading service %s: %w", a.ServiceID, err)
	}
	var svc serviceDoc
	if err := json.Unmarshal(raw, &svc); err != nil {
		return Case{}, fmt.Errorf("error reading service %s: %w", a.ServiceID, err)
	}
	cats := svc.categories()
	if reason, ok := s.opts.Rules.Excluded(a.Channel, svc.ID, cats); ok {
		return Case{}, &Refusal{Reason: reason, Fields: FieldErrors{{"channel", reason}}}
	}
	resident, decisions, err := s.opts.Eligibility.Eligibility(ctx, pseud)
	if errors.Is(err, eligibility.ErrNotFound) {
		return Case{}, &Refusal{Reason: "Жителя нет в регистре: без района регистрации заявление некуда направить. Проверьте СНИЛС.",
			Fields: FieldErrors{{"resident", "not in the residents' registry"}}}
	}
	if err != nil {
		return Case{}, fmt.Errorf("error reading resident %s: %w", pseud, err)
	}
	facts, err := eligibility.ParseFacts(resident.Facts)
	if err != nil {
		return Case{}, fmt.Errorf("error reading resident %s: %w", pseud, err)
	}
	assessment := Assessment{Eligible: true, Rules: []RuleVerdict{}}
	for _, d := range decisions {
		if d.Rule.Governs(svc.ID, cats, svc.Name) {
			assessment.Rules = append(assessment.Rules, RuleVerdict{Rule: d.Rule.ID, Eligible: d.Eligible, Explanation: d.Rule.Explanation})
			assessment.Eligible = assessment.Eligible && d.Eligible
		}
	}
	routing, ok := s.opts.Rules.Route(cats, facts.Address.District, facts.Address.Okrug)
	if !ok {
		return Case{}, &Refusal{Reason: fmt.Sprintf("Нет правила маршрутизации для услуги в районе «%s»: сообщите администратору.", facts.Address.District)}
	}
	org, _ := s.opts.Rules.Organization(routing.Organization)
	now := s.now()
	c := Case{
		ID: uuid.NewString(), Resident: pseud, Service: Ref{ID: svc.ID, Name: svc.Name}, Categories: cats,
		District: facts.Address.District, Okrug: facts.Address.Okrug, Organization: Ref{ID: org.ID, Name: org.Name},
		Routing: routing, Channel: a.Channel, Request: a.Request, Contact: a.Contact, Eligibility: assessment,
		FiledBy: f.ClientName, Purpose: f.Purpose, SubmittedAt: now, UpdatedAt: now,
	}
	first := Event{EventID: hubEventPrefix + StatusSubmitted, Status: StatusSubmitted, OccurredAt: now,
		Actor: f.ClientName, ReportedBy: f.ClientName, ReceivedAt: now}
	c.History = []Event{first}
	s.setCurrent(&c)
	tx, err := s.opts.Pool.Begin(ctx)
	if err != nil {
		return Case{}, fmt.Errorf("error beginning a transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var seq int64
	if err := tx.QueryRow(ctx, `INSERT INTO case_counters (year, last) VALUES ($1, 1)
		ON CONFLICT (year) DO UPDATE SET last = case_counters.last + 1 RETURNING last`, now.Year()).Scan(&seq); err != nil {
		return Case{}, fmt.Errorf("error numbering a case: %w", err)
	}
	c.CaseNumber = fmt.Sprintf("%d-%06d", now.Year(), seq)
	routingJSON, _ := json.Marshal(c.Routing)
	contactJSON, _ := json.Marshal(c.Contact)
	assessJSON, _ := json.Marshal(c.Eligibility)
	_, err = tx.Exec(ctx, `INSERT INTO cases (id, case_number, pseudonym, service_id, service_name, categories, district,
		okrug, organization, routing, channel, request, contact, eligibility, filed_by, filed_by_name, purpose, status,
		status_at, deadline_at, version, submitted_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $22)`,
		c.ID, c.CaseNumber, c.Resident, c.Service.ID, c.Service.Name, c.Categories, c.District, c.Okrug,
		c.Organization.ID, string(routingJSON), c.Channel, c.Request, string(contactJSON), string(assessJSON),
		f.ClientID, f.ClientName, f.Purpose, c.Status, c.StatusAt, c.DeadlineAt, int64(1), now)
	if err != nil {
		return Case{}, fmt.Errorf("error recording case %s: %w", c.CaseNumber, err)
	}
	if err := insertEvent(ctx, tx, c.ID, first); err != nil {
		return Case{}, err
	}
	c.Version = 1
	if err := s.opts.Outbox.Append(ctx, tx, []catalog.Change{changeOf(&c, OpSubmitted, first, true)}); err != nil {
		return Case{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Case{}, fmt.Errorf("error committing case %s: %w", c.CaseNumber, err)
	}
	return c, nil
}

// Refusal is an ErrRefused with the reason the operator reads out.
type Refusal struct {
	Reason string
	Fields FieldErrors
}

func (r *Refusal) Error() string { return "application refused: " + r.Reason }
func (r *Refusal) Unwrap() error { return ErrRefused }

func insertEvent(ctx context.Context, tx pgx.Tx, caseID string, e Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO case_events (case_id, event_id, status, occurred_at, actor, reason, reported_by, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, caseID, e.EventID, e.Status, e.OccurredAt, e.Actor, e.Reason, e.ReportedBy, e.ReceivedAt)
	if err != nil {
		return fmt.Errorf("error recording event %s of case %s: %w", e.EventID, caseID, err)
	}
	return nil
}

// setCurrent sets the case's status from its history: the latest by event time, ties going to the
// later arrival (History is kept in that order), with its stage and deadline.
func (s *Store) setCurrent(c *Case) {
	sortHistory(c.History)
	last := c.History[len(c.History)-1]
	c.Status, c.StatusAt, c.Stage = last.Status, last.OccurredAt, StageOf(last.Status)
	c.DeadlineAt = nil
	if !terminal(last.Status) {
		if d, ok := s.opts.Rules.Deadline(c.Categories, last.Status); ok {
			at := last.OccurredAt.Add(d)
			c.DeadlineAt = &at
		}
	}
	c.Overdue = c.DeadlineAt != nil && c.DeadlineAt.Before(s.now())
}

// sortHistory orders by event time; the stable sort keeps arrival order among equal times.
func sortHistory(h []Event) {
	slices.SortStableFunc(h, func(a, b Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
}

// changeDoc is the document of a case's change event: enough to route and count it, nothing
// personal (no pseudonym, request or contact), since every subscriber of the feed receives it.
// District is the resident's registration district, which lets a department subscribe to its own.
type changeDoc struct {
	ID           string     `json:"id"`
	Organization string     `json:"organization"`
	ServiceID    string     `json:"service_id"`
	District     string     `json:"district"`
	Channel      string     `json:"channel"`
	Status       string     `json:"status"`
	StatusAt     time.Time  `json:"status_at"`
	DeadlineAt   *time.Time `json:"deadline_at,omitempty"`
	SubmittedAt  time.Time  `json:"submitted_at"`
	Event        struct {
		EventID    string    `json:"event_id"`
		Status     string    `json:"status"`
		OccurredAt time.Time `json:"occurred_at"`
	} `json:"event"`
}

func changeOf(c *Case, op string, e Event, statusChanged bool) catalog.Change {
	d := changeDoc{ID: c.ID, Organization: c.Organization.ID, ServiceID: c.Service.ID, District: c.District,
		Channel: c.Channel, Status: c.Status, StatusAt: c.StatusAt, DeadlineAt: c.DeadlineAt, SubmittedAt: c.SubmittedAt}
	d.Event.EventID, d.Event.Status, d.Event.OccurredAt = e.EventID, e.Status, e.OccurredAt
	doc, _ := json.Marshal(d) // plain fields: cannot fail
	fields := []string{"history"}
	if statusChanged {
		fields = append(fields, "status")
	}
	return catalog.Change{EntityType: EntityApplication, EntityID: c.ID, Op: op, Version: c.Version, ChangedFields: fields, Doc: doc}
}

const caseColumns = `id::text, case_number, pseudonym, service_id, service_name, categories, district, okrug, organization,
	routing, channel, request, contact, eligibility, filed_by_name, purpose, status, status_at, deadline_at, version,
	submitted_at, updated_at`

func (s *Store) scanCase(row pgx.Row) (Case, error) {
	var c Case
	var routing, contact, assess []byte
	err := row.Scan(&c.ID, &c.CaseNumber, &c.Resident, &c.Service.ID, &c.Service.Name, &c.Categories, &c.District,
		&c.Okrug, &c.Organization.ID, &routing, &c.Channel, &c.Request, &contact, &assess, &c.FiledBy, &c.Purpose,
		&c.Status, &c.StatusAt, &c.DeadlineAt, &c.Version, &c.SubmittedAt, &c.UpdatedAt)
	if err != nil {
		return Case{}, err
	}
	if err := errors.Join(json.Unmarshal(routing, &c.Routing), json.Unmarshal(contact, &c.Contact), json.Unmarshal(assess, &c.Eligibility)); err != nil {
		return Case{}, fmt.Errorf("error reading case %s: %w", c.CaseNumber, err)
	}
	if org, ok := s.opts.Rules.Organization(c.Organization.ID); ok {
		c.Organization.Name = org.Name
	}
	c.StatusAt, c.SubmittedAt, c.UpdatedAt = c.StatusAt.UTC(), c.SubmittedAt.UTC(), c.UpdatedAt.UTC()
	if c.DeadlineAt != nil {
		at := c.DeadlineAt.UTC()
		c.DeadlineAt = &at
	}
	c.Stage = StageOf(c.Status)
	c.Overdue = c.DeadlineAt != nil && c.DeadlineAt.Before(s.now())
	return c, nil
}

func history(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, caseID string) ([]Event, error) {
	rows, err := q.Query(ctx, `SELECT event_id, status, occurred_at, actor, reason, reported_by, received_at
		FROM case_events WHERE case_id = $1 ORDER BY occurred_at, seq`, caseID)
	if err != nil {
		return nil, fmt.Errorf("error reading the history of case %s: %w", caseID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.EventID, &e.Status, &e.OccurredAt, &e.Actor, &e.Reason, &e.ReportedBy, &e.ReceivedAt)
		e.OccurredAt, e.ReceivedAt = e.OccurredAt.UTC(), e.ReceivedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("error reading the history of case %s: %w", caseID, err)
	}
	return out, nil
}

// Get returns the case with the id and its history, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Case, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Case{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return s.getWhere(ctx, "id = $1::uuid", id)
}

// GetByNumber returns the case with the case number and its history, or ErrNotFound.
func (s *Store) GetByNumber(ctx context.Context, number string) (Case, error) {
	return s.getWhere(ctx, "case_number = $1", number)
}

func (s *Store) getWhere(ctx context.Context, where string, arg string) (Case, error) {
	c, err := s.scanCase(s.opts.Pool.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return Case{}, fmt.Errorf("%w: %s", ErrNotFound, arg)
	}
	if err != nil {
		return Case{}, fmt.Errorf("error reading case %s: %w", arg, err)
	}
	if c.History, err = history(ctx, s.opts.Pool, c.ID); err != nil {
		return Case{}, err
	}
	return c, nil
}

// Overdue returns cases past the deadline of their status, longest overdue first: at most limit,
// of one organization when org is not "". History is left out.
func (s *Store) Overdue(ctx context.Context, org string, limit int) ([]Case, error) {
	rows, err := s.opts.Pool.Query(ctx, `SELECT `+caseColumns+` FROM cases
		WHERE deadline_at < $1 AND ($2 = '' OR organization = $2) ORDER BY deadline_at, id LIMIT $3`, s.now(), org, limit)
	if err != nil {
		return nil, fmt.Errorf("error listing overdue cases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Case, error) { return s.scanCase(r) })
	if err != nil {
		return nil, fmt.Errorf("error listing overdue cases: %w", err)
	}
	return out, nil
}

// OverdueCounts returns how many cases are overdue, per organization.
func (s *Store) OverdueCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.opts.Pool.Query(ctx, `SELECT organization, count(*) FROM cases WHERE deadline_at < $1 GROUP BY organization`, s.now())
	if err != nil {
		return nil, fmt.Errorf("error counting overdue cases: %w", err)
	}
	out := map[string]int64{}
	var org string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&org, &n}, func() error { out[org] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("error counting overdue cases: %w", err)
	}
	return out, nil
}
