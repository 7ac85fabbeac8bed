package hsds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
	"socialhub/connectors/servicedoc"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// KindName is the name of this kind in the config.
const KindName = "hsds"

// Kind returns the kind for the registry.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:        KindName,
		Description: "an HSDS 3.0 API (a department's system or an NGO's feed): /services, paged, full or incremental",
		New:         New,
	}
}

// position is this kind's cursor. A run reads the pages of one listing from page 1; a run killed
// mid-way resumes at its page and item, with its start time and its mode. Complete marks the
// position after the listing's last service: the next run starts a new listing, full or, when
// incremental, of the services modified since this one started.
type position struct {
	// RunStart is when the run reading this listing started.
	RunStart time.Time `json:"run_start"`
	// Page is the page being read (from 1); Item how many of its services are read.
	Page int `json:"page"`
	Item int `json:"item"`
	// LastComplete is when the last complete run started (zero before the first one).
	LastComplete time.Time `json:"last_complete,omitzero"`
	// Since is the modified_after of an incremental run; zero for a full run.
	Since time.Time `json:"since,omitzero"`
	// Total is the total_items a full run's first page reported (-1: the feed did not say).
	Total    int  `json:"total"`
	Complete bool `json:"complete,omitempty"`
}

// page is one answer of /services: the HSDS 3.0 page header and its contents.
type page struct {
	TotalItems *int              `json:"total_items"`
	TotalPages *int              `json:"total_pages"`
	PageNumber *int              `json:"page_number"`
	LastPage   *bool             `json:"last_page"`
	Empty      *bool             `json:"empty"`
	Contents   []json.RawMessage `json:"contents"`
}

// loaded is a page read into memory, with whether it is known to be the last.
type loaded struct {
	number    int
	items     []json.RawMessage
	total     int
	last      bool
	lastKnown bool
}

// Source reads an HSDS feed's services. It is a connectors.Snapshotter whose full runs are
// snapshots and whose incremental runs are not.
type Source struct {
	name    string
	opts    Options
	fetcher *fetch.Fetcher
	mapper  mapper
	now     func() time.Time

	pos position
	// snapshot is the id of the listing being read ("" for an incremental one).
	snapshot string
	cur      *loaded
	ahead    *loaded // the page after cur, read early to learn whether cur was the last
	done     bool
}

var _ connectors.Snapshotter = (*Source)(nil)

// New builds an hsds source from its config.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	opts.setDefaults()
	if err := opts.validate(deps.Env()); err != nil {
		return nil, fmt.Errorf("%w: sources[%s].options: %w", connectors.ErrBadOptions, cfg.Name, err)
	}
	return &Source{
		name: cfg.Name, opts: opts, fetcher: fetch.New(opts.Fetch, deps.Env()),
		mapper: mapper{taxonomy: opts.Taxonomy}, now: time.Now,
	}, nil
}

// Open starts a new listing, or resumes the one a saved position was in.
func (s *Source) Open(ctx context.Context, pos connectors.Position) error {
	s.cur, s.ahead, s.done = nil, nil, false
	now := s.now().UTC()
	if len(pos) == 0 {
		s.pos = position{RunStart: now, Page: 1, Total: -1}
		s.snapshot = snapshotID(s.pos)
		return nil
	}
	var prev position
	if err := json.Unmarshal(pos, &prev); err != nil {
		return fmt.Errorf("error reading saved position %q: %w", pos, err)
	}
	if prev.Page < 1 || prev.Item < 0 || prev.RunStart.IsZero() {
		return fmt.Errorf("error reading saved position %q: no run start or page", pos)
	}
	if !prev.Complete {
		// Killed mid-way: finish that listing, in its mode, as the same snapshot.
		s.pos = prev
		s.snapshot = snapshotID(prev)
		return nil
	}
	next := position{RunStart: now, Page: 1, LastComplete: prev.RunStart, Total: -1}
	if s.opts.Incremental {
		next.Since = prev.RunStart.Add(-s.opts.Overlap)
	} else if *s.opts.SkipUnchanged && prev.Since.IsZero() {
		changed, err := s.changedSince(ctx, prev)
		if err != nil {
			return err
		}
		if !changed {
			// The last full listing is still the list: the same snapshot, nothing to read.
			s.pos, s.snapshot, s.done = prev, snapshotID(prev), true
			return nil
		}
	}
	s.pos = next
	s.snapshot = snapshotID(next)
	return nil
}

// snapshotID names a full listing by its start; an incremental one is no snapshot.
func snapshotID(p position) string {
	if !p.Since.IsZero() {
		return ""
	}
	return "hsds:" + p.RunStart.UTC().Format(time.RFC3339Nano)
}

// SnapshotID is non-empty only while reading a full listing.
func (s *Source) SnapshotID() string { return s.snapshot }

// changedSince asks the feed whether a full listing would differ from the complete one prev read:
// a service modified since it started (modified_after), or another count of services (a deletion).
func (s *Source) changedSince(ctx context.Context, prev position) (bool, error) {
	if prev.Total < 0 {
		return true, nil
	}
	p, _, err := s.getPage(ctx, 1, 1, prev.RunStart.Add(-s.opts.Overlap))
	if err != nil {
		return false, err
	}
	if len(p.Contents) > 0 || p.TotalItems == nil || *p.TotalItems > 0 {
		return true, nil
	}
	p, _, err = s.getPage(ctx, 1, 1, time.Time{})
	if err != nil {
		return false, err
	}
	return p.TotalItems == nil || *p.TotalItems != prev.Total, nil
}

// pageURL is /services with the paging, nesting and modification parameters.
func (s *Source) pageURL(number, perPage int, since time.Time) string {
	q := url.Values{}
	q.Set("page", strconv.Itoa(number))
	q.Set("per_page", strconv.Itoa(perPage))
	if s.opts.FullService == FullAuto || s.opts.FullService == FullParam {
		q.Set("full", "true")
	}
	if !since.IsZero() {
		q.Set("modified_after", since.UTC().Format(time.RFC3339))
	}
	return s.opts.BaseURL + "/services?" + q.Encode()
}

// get fetches rawURL and returns its body.
func (s *Source) get(ctx context.Context, rawURL string) ([]byte, error) {
	req, err := s.fetcher.NewRequest(ctx, http.MethodGet, rawURL)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.fetcher.Do(req)
	if err != nil {
		return nil, fmt.Errorf("error fetching %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	return s.fetcher.ReadBody(resp)
}

// head is the start of a body, for an error message.
func head(b []byte) string {
	const n = 200
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[:n]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// getPage fetches one page. A feed answering a bare array is taken as its whole list on one page.
func (s *Source) getPage(ctx context.Context, number, perPage int, since time.Time) (page, string, error) {
	u := s.pageURL(number, perPage, since)
	body, err := s.get(ctx, u)
	if err != nil {
		return page{}, u, err
	}
	var p page
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(body, &p.Contents); err != nil {
			return page{}, u, fmt.Errorf("%w: %s: %w; the answer begins %q", ErrNotJSON, u, err, head(body))
		}
		last := true
		if number > 1 {
			p.Contents = nil // the array was the whole list, already read on page 1
		}
		p.LastPage = &last
		return p, u, nil
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return page{}, u, fmt.Errorf("%w: %s is not an HSDS page: %w; the answer begins %q", ErrNotJSON, u, err, head(body))
	}
	if p.PageNumber != nil && *p.PageNumber != number {
		return page{}, u, fmt.Errorf("%w: %s answered page_number %d", ErrPaging, u, *p.PageNumber)
	}
	return p, u, nil
}

// load fetches page number of the listing being read.
func (s *Source) load(ctx context.Context, number int) (*loaded, error) {
	p, u, err := s.getPage(ctx, number, s.opts.PerPage, s.pos.Since)
	if err != nil {
		return nil, err
	}
	l := &loaded{number: number, items: p.Contents, total: -1}
	if p.TotalItems != nil {
		l.total = *p.TotalItems
	}
	switch {
	case len(p.Contents) == 0, p.LastPage != nil && *p.LastPage, p.Empty != nil && *p.Empty,
		p.TotalPages != nil && number >= *p.TotalPages:
		l.last, l.lastKnown = true, true
	case p.LastPage != nil || p.TotalPages != nil:
		l.lastKnown = true
	}
	if prev := s.cur; prev != nil && prev.number == number-1 && len(prev.items) > 0 && len(l.items) > 0 &&
		bytes.Equal(prev.items[0], l.items[0]) {
		return nil, fmt.Errorf("%w: %s answered the same services as page %d (does the feed ignore `page`?)", ErrPaging, u, number-1)
	}
	return l, nil
}

// isLast tells whether the current page is the listing's last, reading the next page when the
// feed's header does not say.
func (s *Source) isLast(ctx context.Context) (bool, error) {
	if s.cur.lastKnown {
		return s.cur.last, nil
	}
	if s.ahead == nil {
		a, err := s.load(ctx, s.cur.number+1)
		if err != nil {
			return false, err
		}
		s.ahead = a
	}
	return len(s.ahead.items) == 0, nil
}

// Read returns the next service.
func (s *Source) Read(ctx context.Context) (connectors.Record, error) {
	if s.done {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	for {
		if s.cur == nil {
			l, err := s.load(ctx, s.pos.Page)
			if err != nil {
				return connectors.Record{}, err
			}
			s.cur = l
			if s.pos.Page == 1 && s.pos.Since.IsZero() && s.pos.Total < 0 {
				s.pos.Total = l.total
			}
			// A feed that shrank since the saved position: its end is where the page ends.
			s.pos.Item = min(s.pos.Item, len(l.items))
		}
		if s.pos.Item < len(s.cur.items) {
			rec, err := s.record(ctx, s.cur.items[s.pos.Item])
			if err != nil {
				return connectors.Record{}, err
			}
			after := s.pos
			after.Item++
			if after.Item == len(s.cur.items) {
				last, err := s.isLast(ctx)
				if err != nil {
					return connectors.Record{}, err
				}
				if last {
					after.Complete = true
				} else {
					after.Page, after.Item = after.Page+1, 0
				}
			}
			if rec.Position, err = json.Marshal(after); err != nil {
				return connectors.Record{}, err
			}
			if after.Page != s.pos.Page {
				s.cur, s.ahead = s.ahead, nil
			}
			s.pos = after
			return rec, nil
		}
		last, err := s.isLast(ctx)
		if err != nil {
			return connectors.Record{}, err
		}
		if last {
			s.done = true
			return connectors.Record{}, connectors.ErrEndOfInput
		}
		s.pos.Page, s.pos.Item = s.pos.Page+1, 0
		s.cur, s.ahead = s.ahead, nil
	}
}

// record maps one listed service, fetching it whole first when the listing does not nest it.
func (s *Source) record(ctx context.Context, raw json.RawMessage) (connectors.Record, error) {
	var svc hService
	if err := json.Unmarshal(raw, &svc); err != nil {
		return s.rejected(raw, "(root)", "not an HSDS 3.0 service: "+err.Error()), nil
	}
	if svc.ID == "" {
		return s.rejected(raw, "id", "the service has no id"), nil
	}
	if s.opts.FullService == FullFetch || (s.opts.FullService == FullAuto && !svc.nested()) {
		u := s.opts.BaseURL + "/services/" + url.PathEscape(svc.ID)
		body, err := s.get(ctx, u)
		if err != nil {
			return connectors.Record{}, err
		}
		if !json.Valid(body) {
			return connectors.Record{}, fmt.Errorf("%w: %s: the answer begins %q", ErrNotJSON, u, head(body))
		}
		var full hService
		if err := json.Unmarshal(body, &full); err != nil {
			return s.rejected(body, "(root)", u+" is not an HSDS 3.0 service: "+err.Error()), nil
		}
		if full.ID != svc.ID {
			return s.rejected(body, "id", fmt.Sprintf("%s answered service %q", u, full.ID)), nil
		}
		svc = full
	}
	doc := s.mapper.document(&svc)
	data, err := servicedoc.Marshal(&doc)
	if err != nil {
		return connectors.Record{}, fmt.Errorf("error encoding service %s: %w", svc.ID, err)
	}
	return connectors.Record{ExternalID: svc.ID, EntityType: schemas.EntityService, Op: event.OpUpsert, Data: data}, nil
}

// rejected is a service the source cannot map: it goes to dlq with the reason and what was read.
// Its key is its id when it has one, its place in the listing otherwise.
func (s *Source) rejected(raw json.RawMessage, field, why string) connectors.Record {
	var probe struct {
		ID any `json:"id"`
	}
	_ = json.Unmarshal(raw, &probe)
	id, _ := probe.ID.(string)
	if id == "" {
		id = fmt.Sprintf("page-%d-item-%d", s.pos.Page, s.pos.Item+1)
	}
	if !json.Valid(raw) {
		raw, _ = json.Marshal(string(raw))
	}
	return connectors.Record{
		ExternalID: id, EntityType: schemas.EntityService, Op: event.OpUpsert, Data: raw,
		Reasons: []event.Reason{{Field: field, Message: why}},
	}
}

// Ack does nothing: the runner stores the position.
func (s *Source) Ack(context.Context, connectors.Position) error { return nil }

// Close drops the pages held.
func (s *Source) Close(context.Context) error {
	s.cur, s.ahead = nil, nil
	return nil
}
