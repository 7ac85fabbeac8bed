package listings

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
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/connectors"
	"socialhub/internal/catalog"
	"socialhub/internal/clients"
	"socialhub/internal/config"
	"socialhub/internal/dlq"
	"socialhub/internal/event"
	"socialhub/internal/jsonhttp"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

// Audit actions of this package's refusals.
const (
	ActionListing = "listing"
	ActionFeed    = "feed"
	ActionClaim   = "claim"
)

// Statuses of a listing, as GET /v1/listings/{external_id} says.
const (
	StatusAccepted = "accepted"  // published to raw, not in the catalog yet
	StatusApplied  = "applied"   // in the catalog as its own service
	StatusMerged   = "merged"    // in the catalog, merged into a service another source lists
	StatusReview   = "in_review" // in the catalog; a person must decide whether it is a duplicate
	StatusRejected = "rejected"  // dead-lettered, with reasons
	StatusDeleted  = "deleted"   // the delete reached the catalog
)

// Checker checks a document as the validate stage does (*validate.Checker).
type Checker interface {
	Check(entity, dataschema string, data []byte) validate.Result
}

// Producer writes messages and returns once Kafka acknowledged them all (kafka-go's Writer with
// RequiredAcks all).
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Scheduler runs sources added while it runs (*schedule.Scheduler).
type Scheduler interface {
	AddSource(src config.Source) error
	RemoveSource(name string) bool
}

// RunHistory reports the sources' last runs (*connectors.Checkpoints).
type RunHistory interface {
	LastRuns(ctx context.Context) ([]connectors.RunInfo, error)
}

// Options configures the API.
type Options struct {
	Store    *Store
	Guard    *clients.Guard
	Clients  *clients.Store
	Checker  Checker
	Producer Producer
	Topics   event.Topics
	Catalog  *catalog.Store
	DLQ      *dlq.Store
	// Audit records claims (*audit.Log); refusals go through Guard.
	Audit clients.Auditor
	// Runs reports the feeds' runs.
	Runs RunHistory
	// CheckSource builds a source as the hub would (connectors.Registry.New) so a feed the hsds
	// kind refuses is a 422 now, not a failed run later; nil skips the check.
	CheckSource func(config.Source) error
	// Scheduler, when this process runs the connectors, takes a new feed at once; FeedSync
	// brings it to the scheduler of any process within its interval anyway.
	Scheduler Scheduler
	// FeedSchedule is a feed's schedule when the NGO names none (default "@every 1h");
	// MinFeedInterval the shortest one an NGO may ask for (default 5 minutes).
	FeedSchedule    string
	MinFeedInterval time.Duration
	// MaxBody bounds a pushed document (default 1 MiB).
	MaxBody int64
	Logger  *slog.Logger
	Now     func() time.Time
}

// API serves the NGO listing endpoints.
type API struct {
	opts Options
	log  *slog.Logger
}

// New returns the API.
func New(opts Options) *API {
	if opts.FeedSchedule == "" {
		opts.FeedSchedule = "@every 1h"
	}
	if opts.MinFeedInterval <= 0 {
		opts.MinFeedInterval = 5 * time.Minute
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{opts: opts, log: log}
}

// Mux is what Mount registers on (*api.Server, *http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount registers the routes.
func (a *API) Mount(m Mux) {
	ngo := func(action string, h http.HandlerFunc) http.Handler {
		return a.opts.Guard.Require(clients.ScopeListingsWrite, clients.WithAction(action))(a.bound(action, h))
	}
	m.Handle("PUT /v1/listings/{external_id}", ngo(ActionListing, a.put))
	m.Handle("DELETE /v1/listings/{external_id}", ngo(ActionListing, a.delete))
	m.Handle("GET /v1/listings/{external_id}", ngo(ActionListing, a.get))
	m.Handle("POST /v1/feeds", ngo(ActionFeed, a.addFeed))
	m.Handle("GET /v1/feeds", ngo(ActionFeed, a.listFeeds))
	m.Handle("GET /v1/feeds/{id}", ngo(ActionFeed, a.getFeed))
	m.Handle("DELETE /v1/feeds/{id}", ngo(ActionFeed, a.deleteFeed))
	m.Handle("POST /v1/organizations/{id}/claim",
		a.opts.Guard.Require(clients.ScopeClientsAdmin, clients.WithAction(ActionClaim))(http.HandlerFunc(a.claim)))
}

// bound admits NGO clients bound to an organization: what they publish is published under it.
func (a *API) bound(action string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _ := clients.FromContext(r.Context())
		if c.Kind != clients.KindNGO || c.Organization == nil {
			a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: action,
				Reason: "only an ngo client bound to its organization publishes listings (socialhub clients bind, or a claim)"})
			return
		}
		next(w, r)
	}
}

// SourceName is the source an NGO client's pushed listings are published under.
func SourceName(clientID string) string { return "ngo-" + clientID }

// OrganizationLocalID is the local id of the client's organization in its pushed documents: the
// same for every listing, so they share one organization member.
func OrganizationLocalID(org clients.Organization) string {
	if org.INN != "" {
		return "inn-" + org.INN
	}
	return "ogrn-" + org.OGRN
}

var externalIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// externalID reads the path's id, or answers 400.
func externalID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("external_id")
	if !externalIDPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, "bad external id", []clients.FieldError{{Field: "external_id",
			Message: "1 to 128 of Latin letters, digits, '.', '_', ':', '-', starting with a letter or digit"}})
		return "", false
	}
	return id, true
}

// own answers the listing of the path if it is the client's: 404 when there is none, 403 (audited)
// when it is another's.
func (a *API) own(w http.ResponseWriter, r *http.Request, c clients.Client, id string) (Listing, bool) {
	l, err := a.opts.Store.Listing(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no listing "+id, nil)
		return Listing{}, false
	case err != nil:
		a.unavailable(w, r, err)
		return Listing{}, false
	case l.ClientID != c.ID:
		a.refuseNotOwner(w, r, id)
		return Listing{}, false
	case l.EventID == "":
		// Reserved by a push whose publication failed: nothing was ever accepted.
		writeError(w, http.StatusNotFound, "no listing "+id, nil)
		return Listing{}, false
	}
	return l, true
}

func (a *API) refuseNotOwner(w http.ResponseWriter, r *http.Request, id string) {
	a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionListing,
		Reason: "listing " + id + " belongs to another organization"})
}

func (a *API) put(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, _ := clients.FromContext(ctx)
	id, ok := externalID(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the document is over %d bytes", a.opts.MaxBody), nil)
		return
	}
	doc, reasons := decodeObject(body)
	if len(reasons) > 0 {
		writeReasons(w, reasons)
		return
	}
	org := *c.Organization
	if named := foreignIdentifiers(doc, org); len(named) > 0 {
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionListing,
			Reason: "the document names another organization; a client publishes only under its own", Fields: named})
		return
	}
	if reasons := force(doc, id, org, c.Name); len(reasons) > 0 {
		writeReasons(w, reasons)
		return
	}
	data, err := encode(doc)
	if err != nil {
		writeReasons(w, []event.Reason{{Field: "(root)", Message: err.Error()}})
		return
	}
	// The same checks the validate stage runs: what passes here passes there.
	res := a.opts.Checker.Check(schemas.EntityService, "", data)
	if len(res.Reasons) > 0 {
		writeReasons(w, res.Reasons)
		return
	}
	source := SourceName(c.ID)
	orgLocal := OrganizationLocalID(org)
	if err := a.opts.Store.Claim(ctx, id, c.ID, source, orgLocal); errors.Is(err, ErrNotOwner) {
		a.refuseNotOwner(w, r, id)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	l := Listing{ExternalID: id, ClientID: c.ID, Source: source, OrganizationID: orgLocal, Op: event.OpUpsert, ContentHash: res.ContentHash}
	if !a.publish(w, r, &l, data) {
		return
	}
	jsonhttp.Write(w, http.StatusAccepted, a.accepted(l))
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) {
	c, _ := clients.FromContext(r.Context())
	id, ok := externalID(w, r)
	if !ok {
		return
	}
	l, ok := a.own(w, r, c, id)
	if !ok {
		return
	}
	l.Op, l.ContentHash = event.OpDelete, ""
	if !a.publish(w, r, &l, nil) {
		return
	}
	jsonhttp.Write(w, http.StatusAccepted, a.accepted(l))
}

// publish writes the listing's event to raw and records it once Kafka acknowledged it.
func (a *API) publish(w http.ResponseWriter, r *http.Request, l *Listing, data []byte) bool {
	ctx := r.Context()
	now := a.opts.Now().UTC()
	ev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(l.Source), Type: event.Type("raw", schemas.EntityService, l.Op),
		Subject: l.ExternalID, Time: now, DataSchema: schemas.SchemaID(schemas.EntityService),
		EntityType: schemas.EntityService, Op: l.Op, Data: data,
	}
	if len(data) > 0 {
		h, err := event.ContentHash(data)
		if err != nil {
			writeReasons(w, []event.Reason{{Field: "(root)", Message: err.Error()}})
			return false
		}
		ev.ContentHash = h
	}
	value, err := event.Marshal(ev)
	if err != nil {
		writeReasons(w, []event.Reason{{Field: "(root)", Message: err.Error()}})
		return false
	}
	msg := kafka.Message{Topic: a.opts.Topics.Raw, Key: []byte(event.Key(l.Source, l.ExternalID)), Value: value,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}}}
	// Never answer 202 before Kafka holds the record: the NGO would believe a listing the hub
	// could still lose.
	if err := a.opts.Producer.WriteMessages(ctx, msg); err != nil {
		a.unavailable(w, r, fmt.Errorf("error publishing listing %s: %w", l.ExternalID, err))
		return false
	}
	l.EventID, l.AcceptedAt = ev.ID, now
	if err := a.opts.Store.Accepted(ctx, *l); err != nil {
		// Published but not recorded: the listing goes on through the pipeline; the NGO retries
		// and the same content changes nothing downstream.
		a.unavailable(w, r, err)
		return false
	}
	return true
}

// acceptedBody is the 202 of a push or delete.
type acceptedBody struct {
	ExternalID string    `json:"external_id"`
	Source     string    `json:"source"`
	Op         string    `json:"op"`
	Status     string    `json:"status"`
	EventID    string    `json:"event_id"`
	AcceptedAt time.Time `json:"accepted_at"`
	Location   string    `json:"location"`
}

func (a *API) accepted(l Listing) acceptedBody {
	return acceptedBody{ExternalID: l.ExternalID, Source: l.Source, Op: l.Op, Status: StatusAccepted, EventID: l.EventID,
		AcceptedAt: l.AcceptedAt, Location: "/v1/listings/" + l.ExternalID}
}

// State is where a listing stands (GET /v1/listings/{external_id}).
type State struct {
	ExternalID string    `json:"external_id"`
	Source     string    `json:"source"`
	Op         string    `json:"op"`
	Status     string    `json:"status"`
	EventID    string    `json:"event_id"`
	AcceptedAt time.Time `json:"accepted_at"`
	// ServiceID is the canonical service; MergedInto says it merged into another source's.
	ServiceID      string `json:"service_id,omitempty"`
	MergedInto     string `json:"merged_into,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
	// OrganizationMerged says the organization joined one the catalog knew (a grant list's).
	OrganizationMerged bool           `json:"organization_merged,omitempty"`
	InReview           int            `json:"in_review,omitempty"`
	Reasons            []event.Reason `json:"reasons,omitempty"`
	DeadLetterID       string         `json:"dead_letter_id,omitempty"`
	// Applied says the catalog holds an earlier version while the last push is on its way.
	Applied bool `json:"applied_earlier_version,omitempty"`
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	c, _ := clients.FromContext(r.Context())
	id, ok := externalID(w, r)
	if !ok {
		return
	}
	l, ok := a.own(w, r, c, id)
	if !ok {
		return
	}
	st, err := a.State(r.Context(), l)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, st)
}

// State tells where a listing stands: its last event dead-lettered, applied (merged, in review)
// or still on its way.
func (a *API) State(ctx context.Context, l Listing) (State, error) {
	st := State{ExternalID: l.ExternalID, Source: l.Source, Op: l.Op, Status: StatusAccepted, EventID: l.EventID, AcceptedAt: l.AcceptedAt}
	dead, err := a.deadLetter(ctx, l)
	if err != nil {
		return State{}, err
	}
	if dead != nil {
		st.Status, st.Reasons, st.DeadLetterID = StatusRejected, dead.Reasons, dead.ID
		return st, nil
	}
	rs, err := a.opts.Catalog.RecordState(ctx, l.Source, l.ExternalID, l.OrganizationID)
	if errors.Is(err, catalog.ErrNotFound) {
		if l.Op == event.OpDelete {
			st.Status = StatusDeleted
		}
		return st, nil
	}
	if err != nil {
		return State{}, err
	}
	st.ServiceID, st.OrganizationID, st.InReview = rs.ServiceID, rs.OrganizationID, rs.InReview
	st.OrganizationMerged = rs.OrganizationMerged()
	if rs.Merged() {
		st.MergedInto = rs.ServiceID
	}
	if l.Op == event.OpDelete || rs.ContentHash != l.ContentHash {
		st.Applied = true // the catalog still holds the version before the last push or delete
		return st, nil
	}
	switch {
	case rs.InReview > 0:
		st.Status = StatusReview
	case rs.Merged():
		st.Status = StatusMerged
	default:
		st.Status = StatusApplied
	}
	return st, nil
}

// deadLetterPages bounds the dead-letter pages read per look-up: an NGO's source has few.
const deadLetterPages = 5

// deadLetter finds the dead letter of the listing's last event, if any.
func (a *API) deadLetter(ctx context.Context, l Listing) (*dlq.Entry, error) {
	if a.opts.DLQ == nil {
		return nil, nil
	}
	f := dlq.Filter{Source: l.Source, Limit: dlq.MaxLimit}
	for range deadLetterPages {
		page, err := a.opts.DLQ.List(ctx, f)
		if err != nil {
			return nil, err
		}
		for i := range page.Items {
			e := &page.Items[i]
			if e.OriginalID == l.EventID {
				return e, nil
			}
			if e.Time.Before(l.AcceptedAt.Add(-time.Minute)) {
				return nil, nil // newest first: older ones cannot be this event's
			}
		}
		if page.Next == "" {
			return nil, nil
		}
		f.After = page.Next
	}
	return nil, nil
}

// decodeObject decodes the body as one JSON object, numbers as written.
func decodeObject(body []byte) (map[string]any, []event.Reason) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		msg := "the body is not a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, []event.Reason{{Field: "(root)", Message: msg}}
	}
	if dec.More() {
		return nil, []event.Reason{{Field: "(root)", Message: "more than one JSON value"}}
	}
	return doc, nil
}

func encode(doc map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// foreignIdentifiers lists the organization identifiers of doc that are not the client's own.
func foreignIdentifiers(doc map[string]any, org clients.Organization) []clients.FieldError {
	o, _ := doc["organization"].(map[string]any)
	if o == nil {
		return nil
	}
	var out []clients.FieldError
	own := func(scheme, id string) bool {
		switch strings.ToUpper(strings.TrimSpace(scheme)) {
		case "INN", "ИНН":
			return org.INN != "" && id == org.INN
		case "OGRN", "ОГРН", "OGRNIP", "ОГРНИП":
			return org.OGRN != "" && id == org.OGRN
		}
		return true // a scheme the city does not match by names nobody
	}
	if tax, _ := o["tax_id"].(string); tax != "" && digits(tax) != org.INN {
		out = append(out, clients.FieldError{Field: "organization.tax_id", Message: "not the INN of the client's organization"})
	}
	ids, _ := o["organization_identifiers"].([]any)
	for i, it := range ids {
		m, _ := it.(map[string]any)
		scheme, _ := m["identifier_scheme"].(string)
		if scheme == "" {
			scheme, _ = m["identifier_type"].(string)
		}
		id, _ := m["identifier"].(string)
		if !own(scheme, digits(id)) {
			out = append(out, clients.FieldError{Field: fmt.Sprintf("organization.organization_identifiers[%d]", i),
				Message: fmt.Sprintf("%s %s is not the client's organization", scheme, id)})
		}
	}
	if cid, _ := o["id"].(string); org.ID != "" && looksCanonical(cid) && cid != org.ID {
		out = append(out, clients.FieldError{Field: "organization.id", Message: "names another organization of the catalog"})
	}
	return out
}

var canonicalPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// looksCanonical reports whether id has the shape of a catalog id (a UUIDv5).
func looksCanonical(id string) bool { return canonicalPattern.MatchString(strings.ToLower(id)) }

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// force makes doc the client's listing id, under the client's organization: the organization's
// local id and identifiers come from the binding, whatever the document said, so entity
// resolution matches it by INN/OGRN with what grant lists and departments know.
func force(doc map[string]any, id string, org clients.Organization, clientName string) []event.Reason {
	if got, ok := doc["id"]; ok {
		if s, _ := got.(string); s != id {
			return []event.Reason{{Field: "id", Message: fmt.Sprintf("the document's id %v differs from the listing's id %q in the path", got, id)}}
		}
	}
	doc["id"] = id
	o, _ := doc["organization"].(map[string]any)
	if o == nil {
		o = map[string]any{}
	}
	local := OrganizationLocalID(org)
	o["id"] = local
	if name, _ := o["name"].(string); strings.TrimSpace(name) == "" {
		o["name"] = cmpOr(org.Name, clientName)
	}
	delete(o, "tax_id")
	var ids []any
	if org.INN != "" {
		ids = append(ids, map[string]any{"id": local + "-inn", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": org.INN})
	}
	if org.OGRN != "" {
		scheme, label := "OGRN", "ОГРН"
		if len(org.OGRN) == 15 && !strings.HasPrefix(org.OGRN, "1") {
			scheme, label = "OGRNIP", "ОГРНИП"
		}
		ids = append(ids, map[string]any{"id": local + "-ogrn", "identifier_scheme": scheme, "identifier_type": label, "identifier": org.OGRN})
	}
	o["organization_identifiers"] = ids
	doc["organization"] = o
	if _, ok := doc["organization_id"]; ok {
		doc["organization_id"] = local
	}
	return nil
}

func cmpOr(s ...string) string {
	i := slices.IndexFunc(s, func(x string) bool { return x != "" })
	if i < 0 {
		return ""
	}
	return s[i]
}

func (a *API) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "listing request failed", slog.Any("error", err), slog.String("route", r.Pattern))
	writeError(w, http.StatusServiceUnavailable, "the hub cannot take this now, try again", nil)
}

func writeReasons(w http.ResponseWriter, reasons []event.Reason) {
	fields := make([]clients.FieldError, len(reasons))
	for i, r := range reasons {
		fields[i] = clients.FieldError{Field: r.Field, Message: r.Message}
	}
	writeError(w, http.StatusUnprocessableEntity, "the listing is not valid", fields)
}

func writeError(w http.ResponseWriter, status int, msg string, fields []clients.FieldError) {
	jsonhttp.Write(w, status, struct {
		Error  string               `json:"error"`
		Fields []clients.FieldError `json:"fields,omitempty"`
	}{msg, fields})
}
