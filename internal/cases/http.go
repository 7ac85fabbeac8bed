package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"socialhub/internal/audit"
	"socialhub/internal/clients"
	"socialhub/internal/jsonhttp"
)

// Audit actions of case reads and applications.
const (
	ActionApplicationSubmit = "application_submit" // POST /v1/applications
	ActionCaseRead          = "case_read"          // GET /v1/applications/{id}
	ActionCasesOverdue      = "cases_overdue"      // GET /v1/applications?overdue=true
	ActionCaseEvents        = "case_events"        // POST /v1/applications/{id}/events
	ActionCaseStatus        = "case_status"        // GET /v1/cases/{case_number}
)

// Auditor appends to the audit log (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
}

// APIOptions configures the HTTP API.
type APIOptions struct {
	Store  *Store
	Guard  *clients.Guard
	Audit  Auditor
	Logger *slog.Logger
}

// API serves applications and case status.
type API struct {
	opts APIOptions
	log  *slog.Logger
}

// NewAPI returns the API.
func NewAPI(opts APIOptions) *API {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{opts: opts, log: log}
}

// Mount registers the endpoints.
func (a *API) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	g := a.opts.Guard
	m.Handle("POST /v1/applications", g.Require(clients.ScopeApplicationsWrite, clients.WithPurpose(),
		clients.WithAction(ActionApplicationSubmit))(http.HandlerFunc(a.submit)))
	m.Handle("GET /v1/applications", g.Require(clients.ScopeApplicationsRead, clients.WithPurpose(),
		clients.WithAction(ActionCasesOverdue))(http.HandlerFunc(a.overdue)))
	m.Handle("GET /v1/applications/{id}", g.Require(clients.ScopeApplicationsRead, clients.WithPurpose(),
		clients.WithAction(ActionCaseRead))(http.HandlerFunc(a.get)))
	m.Handle("POST /v1/applications/{id}/events", g.Require(clients.ScopeApplicationsEvents,
		clients.WithAction(ActionCaseEvents))(http.HandlerFunc(a.events)))
	m.Handle("GET /v1/cases/{case_number}", g.Require(clients.ScopeCasesStatus,
		clients.WithAction(ActionCaseStatus))(http.HandlerFunc(a.status)))
}

const maxBody = 64 << 10

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body must be JSON of at most %d bytes", maxBody), nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not the JSON expected: "+err.Error(), nil)
		return false
	}
	return true
}

// answered audits a read (or a filing) that is about to be answered. The answer is not sent when
// the audit fails: a case read that left no trace must not happen.
func (a *API) answered(w http.ResponseWriter, r *http.Request, action string, status int, c *Case, detail any) bool {
	ctx := r.Context()
	cl, _ := clients.FromContext(ctx)
	d, _ := json.Marshal(detail)
	e := audit.Entry{ClientID: cl.ID, ClientName: cl.Name, ClientKind: string(cl.Kind), Action: action,
		Outcome: audit.OutcomeAnswered, Status: status, Purpose: clients.PurposeFromContext(ctx), Detail: d}
	if c != nil {
		e.Subject, e.CaseID = c.Resident, c.CaseNumber
	}
	if _, err := a.opts.Audit.Append(ctx, e); err != nil {
		a.log.ErrorContext(ctx, "a case read could not be audited: not answered", slog.Any("error", err), slog.String("action", action))
		writeError(w, http.StatusServiceUnavailable, "the audit log is unavailable, try again", nil)
		return false
	}
	return true
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var app Application
	if !decodeBody(w, r, &app) {
		return
	}
	cl, _ := clients.FromContext(ctx)
	c, err := a.opts.Store.Submit(ctx, app, Filer{ClientID: cl.ID, ClientName: cl.Name, Purpose: clients.PurposeFromContext(ctx)})
	var fe FieldErrors
	var ref *Refusal
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, "the application is not complete", fe)
		return
	case errors.As(err, &ref):
		// Refused by rule: audited, and the answer says why, so the operator can tell the resident.
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusUnprocessableEntity, Action: ActionApplicationSubmit,
			Reason: ref.Reason, Fields: toClientFields(ref.Fields)})
		return
	case err != nil:
		a.log.ErrorContext(ctx, "an application could not be filed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the application could not be recorded, try again", nil)
		return
	}
	if !a.answered(w, r, ActionApplicationSubmit, http.StatusCreated, &c, map[string]any{"case_id": c.ID, "service_id": c.Service.ID,
		"organization": c.Organization.ID, "channel": c.Channel}) {
		return
	}
	w.Header().Set("Location", "/v1/applications/"+c.ID)
	jsonhttp.Write(w, http.StatusCreated, c)
}

// mayRead reports whether the client may read cases of the organization: operators and
// administrators any, a department those routed to it.
func (a *API) mayRead(cl clients.Client, org string) bool {
	if cl.Kind != clients.KindDepartment {
		return true
	}
	own, ok := a.opts.Store.Rules().OrganizationOfClient(cl.ID)
	return ok && own == org
}

// caseNumberPattern is the shape of case numbers: year, dash, sequence.
var caseNumberPattern = regexp.MustCompile(`^\d{4}-\d{6,}$`)

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// By id, or by the case number a caller reads out to the contact centre.
	get := a.opts.Store.Get
	if caseNumberPattern.MatchString(r.PathValue("id")) {
		get = a.opts.Store.GetByNumber
	}
	c, err := get(ctx, r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "no case has this id", nil)
		return
	}
	if err != nil {
		a.log.ErrorContext(ctx, "a case could not be read", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the case could not be read, try again", nil)
		return
	}
	cl, _ := clients.FromContext(ctx)
	if !a.mayRead(cl, c.Organization.ID) {
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionCaseRead, Subject: c.Resident,
			CaseID: c.CaseNumber, Reason: "the case is not routed to this department"})
		return
	}
	if !a.answered(w, r, ActionCaseRead, http.StatusOK, &c, map[string]any{"case_id": c.ID, "version": c.Version}) {
		return
	}
	jsonhttp.Write(w, http.StatusOK, c)
}

// OverdueItem is a case in the overdue list: where it is stuck and since when, nothing personal.
type OverdueItem struct {
	ID           string    `json:"id"`
	CaseNumber   string    `json:"case_number"`
	Service      Ref       `json:"service"`
	Organization Ref       `json:"organization"`
	District     string    `json:"district"`
	Status       string    `json:"status"`
	StatusAt     time.Time `json:"status_at"`
	DeadlineAt   time.Time `json:"deadline_at"`
	OverdueDays  int       `json:"overdue_days"`
}

func (a *API) overdue(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if q.Get("overdue") != "true" {
		writeError(w, http.StatusBadRequest, "list overdue cases with overdue=true", FieldErrors{{"overdue", "must be true"}})
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be 1 to 1000", FieldErrors{{"limit", "must be 1 to 1000"}})
			return
		}
		limit = n
	}
	org := q.Get("organization")
	if org != "" {
		if _, ok := a.opts.Store.Rules().Organization(org); !ok {
			writeError(w, http.StatusBadRequest, "unknown organization", FieldErrors{{"organization", "not an organization of the routing rules"}})
			return
		}
	}
	cl, _ := clients.FromContext(ctx)
	if cl.Kind == clients.KindDepartment {
		own, ok := a.opts.Store.Rules().OrganizationOfClient(cl.ID)
		if !ok || (org != "" && org != own) {
			a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionCasesOverdue,
				Reason: "a department lists only the cases routed to it"})
			return
		}
		org = own
	}
	list, err := a.opts.Store.Overdue(ctx, org, limit)
	if err != nil {
		a.log.ErrorContext(ctx, "overdue cases could not be listed", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the list could not be read, try again", nil)
		return
	}
	now := a.opts.Store.now()
	items := make([]OverdueItem, len(list))
	numbers := make([]string, len(list))
	for i, c := range list {
		items[i] = OverdueItem{ID: c.ID, CaseNumber: c.CaseNumber, Service: c.Service, Organization: c.Organization,
			District: c.District, Status: c.Status, StatusAt: c.StatusAt, DeadlineAt: *c.DeadlineAt,
			OverdueDays: int(now.Sub(*c.DeadlineAt) / (24 * time.Hour))}
		numbers[i] = c.CaseNumber
	}
	if !a.answered(w, r, ActionCasesOverdue, http.StatusOK, nil, map[string]any{"organization": org, "cases": numbers}) {
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"cases": items, "count": len(items)})
}

type pushBody struct {
	Events []StatusEvent `json:"events"`
	StatusEvent
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cl, _ := clients.FromContext(ctx)
	org, ok := a.opts.Store.Rules().OrganizationOfClient(cl.ID)
	if !ok {
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionCaseEvents,
			Reason: "this client speaks for no organization of the routing rules"})
		return
	}
	var body pushBody
	if !decodeBody(w, r, &body) {
		return
	}
	evs := body.Events
	if len(evs) == 0 && (body.EventID != "" || body.Status != "") {
		evs = []StatusEvent{body.StatusEvent}
	}
	c, outcomes, err := a.opts.Store.Report(ctx, r.PathValue("id"), org, cl.Name, evs)
	var fe FieldErrors
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, "the events are not complete", fe)
		return
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no case has this id", nil)
		return
	case errors.Is(err, ErrNotRouted):
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionCaseEvents,
			Reason: "the case is not routed to this department"})
		return
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	case err != nil:
		a.log.ErrorContext(ctx, "case events could not be recorded", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the events could not be recorded, try again", nil)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"case_number": c.CaseNumber, "status": c.Status, "status_at": c.StatusAt,
		"version": c.Version, "events": outcomes})
}

// StatusAnswer is what a resident-facing channel learns: the stage and the next step, nothing else.
type StatusAnswer struct {
	CaseNumber string `json:"case_number"`
	Status     string `json:"status"`
	Stage
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	number := r.PathValue("case_number")
	c, err := a.opts.Store.GetByNumber(ctx, number)
	if errors.Is(err, ErrNotFound) {
		// Audited: someone trying numbers in a row shows up in the log.
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusNotFound, Action: ActionCaseStatus, CaseID: number,
			Reason: "no case has this number"})
		return
	}
	if err != nil {
		a.log.ErrorContext(ctx, "a case could not be read", slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "the case could not be read, try again", nil)
		return
	}
	if !a.answered(w, r, ActionCaseStatus, http.StatusOK, &c, map[string]any{"case_id": c.ID, "status": c.Status}) {
		return
	}
	jsonhttp.Write(w, http.StatusOK, StatusAnswer{CaseNumber: c.CaseNumber, Status: c.Status, Stage: c.Stage})
}

func toClientFields(f FieldErrors) []clients.FieldError {
	out := make([]clients.FieldError, len(f))
	for i, e := range f {
		out[i] = clients.FieldError{Field: e.Field, Message: e.Message}
	}
	return out
}

func writeError(w http.ResponseWriter, status int, msg string, fields FieldErrors) {
	jsonhttp.Write(w, status, struct {
		Error  string      `json:"error"`
		Fields FieldErrors `json:"fields,omitempty"`
	}{msg, fields})
}
