package casestatus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/jsonpointer"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// KindName is the name of this kind in the config.
const KindName = "casestatus"

// Kind returns the kind for the registry.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:        KindName,
		Description: "status events of applications from a department's system (HTTP JSON, mapped with JSON pointers)",
		New:         New,
	}
}

// Options are the kind's options in the config file:
//
//	kind: casestatus
//	options:
//	  url: https://tcso-marino.mos.ru/api/case-events
//	  organization: tcso-marino        # the organization of schemas/case_rules.json this system speaks for
//	  items: /events                   # JSON pointer to the page's array of events; "" for a top-level array
//	  fields:                          # record field -> JSON pointer into an event
//	    application_id: /application
//	    event_id: /id
//	    status: /state
//	    occurred_at: /at
//	    actor: /officer
//	    reason: /comment
//	  statuses: {ПРИНЯТО: received}    # the department's codes -> statuses (codes that are statuses pass)
//	  cursor_pointer: /next            # where the next page's cursor is; absent or "" ends the run
//	  cursor_param: after              # the query parameter the cursor goes in
//	  timeout: 1m                      # fetch.Options, inline
//	  auth: {type: bearer, token_env: TCSO_MARINO_TOKEN}
type Options struct {
	URL           string            `yaml:"url"`
	Organization  string            `yaml:"organization"`
	Items         string            `yaml:"items"`
	Fields        map[string]string `yaml:"fields"`
	Statuses      map[string]string `yaml:"statuses"`
	CursorPointer string            `yaml:"cursor_pointer"`
	CursorParam   string            `yaml:"cursor_param"`
	// MaxPages bounds one run (default 1000).
	MaxPages int           `yaml:"max_pages"`
	Fetch    fetch.Options `yaml:",inline"`
}

// required are the fields every mapping names; reason is optional.
var required = []string{"application_id", "event_id", "status", "occurred_at", "actor"}

// Source reads a department's event feed.
type Source struct {
	name    string
	opts    Options
	fetcher *fetch.Fetcher
	items   jsonpointer.Pointer
	cursor  jsonpointer.Pointer
	fields  map[string]jsonpointer.Pointer

	at      string // the cursor of the page being read ("" for the first)
	next    string
	pending []any
	skipped int // events of the page read so far
	pages   int
	last    bool
}

// New builds a casestatus source from its config.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	var problems []string
	if u, err := url.Parse(opts.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		problems = append(problems, "url must be an http or https URL")
	}
	if strings.TrimSpace(opts.Organization) == "" {
		problems = append(problems, "organization is required: the organization code this system speaks for")
	}
	s := &Source{name: cfg.Name, opts: opts, fields: map[string]jsonpointer.Pointer{}}
	var err error
	if s.items, err = jsonpointer.New(opts.Items); err != nil {
		problems = append(problems, fmt.Sprintf("items: %v", err))
	}
	for _, f := range required {
		if _, ok := opts.Fields[f]; !ok {
			problems = append(problems, "fields."+f+" is required")
		}
	}
	for f, p := range opts.Fields {
		if f != "reason" && !contains(required, f) {
			problems = append(problems, fmt.Sprintf("fields.%s is not a field (use %s, reason)", f, strings.Join(required, ", ")))
			continue
		}
		if s.fields[f], err = jsonpointer.New(p); err != nil {
			problems = append(problems, fmt.Sprintf("fields.%s: %v", f, err))
		}
	}
	if opts.CursorPointer != "" {
		if s.cursor, err = jsonpointer.New(opts.CursorPointer); err != nil {
			problems = append(problems, fmt.Sprintf("cursor_pointer: %v", err))
		}
		if opts.CursorParam == "" {
			problems = append(problems, "cursor_param is required with cursor_pointer")
		}
	}
	if err := opts.Fetch.Validate(deps.Env()); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: sources[%s].options: %s", connectors.ErrBadOptions, cfg.Name, strings.Join(problems, "; "))
	}
	if s.opts.MaxPages <= 0 {
		s.opts.MaxPages = 1000
	}
	s.fetcher = fetch.New(opts.Fetch, deps.Env())
	return s, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// position is the cursor of the page being read and how many of its events are read.
type position struct {
	Cursor string `json:"cursor,omitempty"`
	Item   int    `json:"item"`
}

// Open starts a run at the page of pos; the events of it already read are skipped.
func (s *Source) Open(ctx context.Context, pos connectors.Position) error {
	var p position
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &p); err != nil {
			return fmt.Errorf("%w: position of %s: %w", connectors.ErrBadOptions, s.name, err)
		}
	}
	s.pages, s.last = 0, false
	if err := s.load(ctx, p.Cursor); err != nil {
		return err
	}
	// Skip what earlier runs read of this page; a page that shrank since is read whole (events
	// are idempotent by their id downstream).
	if p.Item <= len(s.pending) {
		s.pending, s.skipped = s.pending[p.Item:], p.Item
	}
	return nil
}

func (s *Source) load(ctx context.Context, cursor string) error {
	u, _ := url.Parse(s.opts.URL)
	if cursor != "" {
		q := u.Query()
		q.Set(s.opts.CursorParam, cursor)
		u.RawQuery = q.Encode()
	}
	req, err := s.fetcher.NewRequest(ctx, http.MethodGet, u.String())
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.fetcher.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := s.fetcher.ReadBody(resp)
	if err != nil {
		return err
	}
	var page any
	if err := json.Unmarshal(body, &page); err != nil {
		return fmt.Errorf("%w: %s: the answer is not JSON: %w", connectors.ErrBackoffRetry, s.name, err)
	}
	v, _, err := s.items.Get(page)
	items, ok := v.([]any)
	if err != nil || !ok {
		return fmt.Errorf("%w: %s: no array of events at %q", connectors.ErrBackoffRetry, s.name, s.opts.Items)
	}
	s.at, s.pending, s.next, s.skipped = cursor, items, "", 0
	s.pages++
	if s.opts.CursorPointer != "" {
		if c, _, err := s.cursor.Get(page); err == nil {
			if str, ok := c.(string); ok {
				s.next = str
			}
		}
	}
	s.last = s.next == "" || s.next == cursor
	return nil
}

// Read returns the next event as a record. A run ends at the page without a next cursor; its
// cursor and the events read of it stay the position, so the next run asks for that page again
// and reads only what was appended to it since.
func (s *Source) Read(ctx context.Context) (connectors.Record, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	for len(s.pending) == 0 {
		if s.last || s.pages >= s.opts.MaxPages {
			return connectors.Record{}, connectors.ErrEndOfInput
		}
		if err := s.load(ctx, s.next); err != nil {
			return connectors.Record{}, err
		}
	}
	item := s.pending[0]
	s.pending = s.pending[1:]
	s.skipped++
	pos, _ := json.Marshal(position{Cursor: s.at, Item: s.skipped})
	return s.record(item, pos), nil
}

func (s *Source) record(item any, pos connectors.Position) connectors.Record {
	doc := map[string]any{"organization": s.opts.Organization}
	var reasons []event.Reason
	for f, p := range s.fields {
		v, _, err := p.Get(item)
		if err != nil || v == nil {
			if f != "reason" {
				reasons = append(reasons, event.Reason{Field: f, Message: "missing at " + s.opts.Fields[f]})
			}
			continue
		}
		str, ok := v.(string)
		if !ok {
			if n, isNum := v.(float64); isNum && f == "event_id" {
				str, ok = fmt.Sprintf("%.0f", n), true
			}
		}
		if !ok {
			reasons = append(reasons, event.Reason{Field: f, Message: "not a string"})
			continue
		}
		doc[f] = str
	}
	if st, ok := doc["status"].(string); ok {
		if mapped, known := s.opts.Statuses[st]; known {
			doc["status"] = mapped
		}
	}
	if at, ok := doc["occurred_at"].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			reasons = append(reasons, event.Reason{Field: "occurred_at", Message: "not an RFC 3339 time"})
		} else {
			doc["occurred_at"] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	id, _ := doc["event_id"].(string)
	data, _ := json.Marshal(doc)
	rec := connectors.Record{ExternalID: s.opts.Organization + "/" + id, EntityType: schemas.EntityApplicationEvent,
		Op: event.OpUpsert, Data: data, Position: pos}
	if len(reasons) > 0 {
		if id == "" {
			rec.ExternalID = s.opts.Organization + "/unmapped"
		}
		rec.Reasons = reasons
	}
	return rec
}

// Ack does nothing: the runner keeps the position.
func (s *Source) Ack(context.Context, connectors.Position) error { return nil }

// Close ends the run.
func (s *Source) Close(context.Context) error {
	s.pending = nil
	return nil
}
