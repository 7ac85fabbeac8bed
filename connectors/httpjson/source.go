package httpjson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-openapi/jsonpointer"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
	"socialhub/connectors/servicedoc"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// KindName is the name of this kind in the config.
const KindName = "httpjson"

// Kind returns the kind for the registry.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:        KindName,
		Description: "any JSON API listing services, mapped with JSON pointers; page, offset, cursor or Link paging",
		New:         New,
	}
}

// request is what asks for one page: the next page's request state is the cursor of this kind.
type request struct {
	Page   int    `json:"page,omitempty"`
	Offset int    `json:"offset,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	URL    string `json:"url,omitempty"` // link paging: the page's own URL
}

// position: the list being read (the hash of its items when the run started over), the request of
// the page being read and how many of its items are read. Complete marks the position after the
// list's last item.
type position struct {
	Snapshot string  `json:"snapshot,omitempty"`
	Request  request `json:"request"`
	Item     int     `json:"item"`
	Complete bool    `json:"complete,omitempty"`
}

// loaded is a fetched page.
type loaded struct {
	req   request
	items []any
	next  *request // nil: the list ends with this page
	sum   [sha256.Size]byte
}

// Source reads a JSON API. It is a connectors.Snapshotter when its list is full (full_list).
type Source struct {
	name      string
	opts      Options
	fetcher   *fetch.Fetcher
	items     jsonpointer.Pointer
	cursorPtr jsonpointer.Pointer
	fields    []field

	pos      position
	snapshot string
	pages    []*loaded // the page being read first, then pages already fetched after it
	fetched  int
	done     bool
}

var _ connectors.Snapshotter = (*Source)(nil)

// New builds an httpjson source from its config.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	opts.setDefaults()
	items, fields, err := opts.compile(deps.Env())
	if err != nil {
		return nil, fmt.Errorf("%w: sources[%s].options: %w", connectors.ErrBadOptions, cfg.Name, err)
	}
	s := &Source{name: cfg.Name, opts: opts, fetcher: fetch.New(opts.Fetch, deps.Env()), items: items, fields: fields}
	if opts.Pagination.Type == PagingCursor {
		s.cursorPtr, _ = jsonpointer.New(opts.Pagination.CursorPointer)
	}
	return s, nil
}

func (s *Source) first() request {
	if s.opts.Pagination.Type == PagingPage {
		return request{Page: *s.opts.Pagination.Start}
	}
	return request{}
}

// Open resumes the list a saved position was in, or starts over: then it reads the whole list
// first, to name it by the hash of its items — an unchanged list reads nothing, and a changed one is
// a new snapshot.
func (s *Source) Open(ctx context.Context, pos connectors.Position) error {
	s.pages, s.fetched, s.done = nil, 0, false
	var prev position
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &prev); err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
		if !prev.Complete {
			s.pos = prev
			s.snapshot = s.snapshotOf(prev.Snapshot)
			return nil
		}
	}
	h := sha256.New()
	req := s.first()
	var prevPage *loaded
	for {
		p, err := s.fetch(ctx, req, prevPage)
		if err != nil {
			return err
		}
		s.pages = append(s.pages, p)
		h.Write(p.sum[:])
		if p.next == nil {
			break
		}
		req, prevPage = *p.next, p
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if len(pos) > 0 && prev.Snapshot == sum {
		// The list read to its end last time is still the list: the same snapshot, nothing new.
		s.pos, s.snapshot, s.done, s.pages = prev, s.snapshotOf(sum), true, nil
		return nil
	}
	s.pos = position{Snapshot: sum, Request: s.first()}
	s.snapshot = s.snapshotOf(sum)
	return nil
}

func (s *Source) snapshotOf(sum string) string {
	if !*s.opts.FullList {
		return ""
	}
	return sum
}

// SnapshotID is the hash of the list's items when the list is full, "" otherwise.
func (s *Source) SnapshotID() string { return s.snapshot }

// requestURL is the URL asking for the page of req.
func (s *Source) requestURL(req request) string {
	if req.URL != "" {
		return req.URL
	}
	p := s.opts.Pagination
	u, _ := url.Parse(s.opts.URL) // checked by compile
	q := u.Query()
	switch p.Type {
	case PagingPage:
		q.Set(p.PageParam, strconv.Itoa(req.Page))
		q.Set(p.SizeParam, strconv.Itoa(p.Size))
	case PagingOffset:
		q.Set(p.OffsetParam, strconv.Itoa(req.Offset))
		q.Set(p.LimitParam, strconv.Itoa(p.Size))
	case PagingCursor:
		if req.Cursor != "" {
			q.Set(p.CursorParam, req.Cursor)
		}
		if p.SizeParam != "" {
			q.Set(p.SizeParam, strconv.Itoa(p.Size))
		}
	case PagingLink:
		if p.SizeParam != "" {
			q.Set(p.SizeParam, strconv.Itoa(p.Size))
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// fetch gets the page of req and works out the request of the next one. prev is the page before
// it, to notice an API that answers the same items again.
func (s *Source) fetch(ctx context.Context, req request, prev *loaded) (*loaded, error) {
	s.fetched++
	if s.fetched > s.opts.MaxPages {
		return nil, fmt.Errorf("%w: more than max_pages = %d pages in one run", ErrPaging, s.opts.MaxPages)
	}
	u := s.requestURL(req)
	hreq, err := s.fetcher.NewRequest(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Accept", "application/json")
	resp, err := s.fetcher.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("error fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := s.fetcher.ReadBody(resp)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers keep their text: "55.7512" stays 55.7512
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w; the answer begins %q", ErrNotJSON, u, err, head(body))
	}
	v, _, err := s.items.Get(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: items %q: %w; the answer begins %q", ErrNotJSON, u, s.opts.Items, err, head(body))
	}
	items, ok := v.([]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("%w: %s: items %q is not an array; the answer begins %q", ErrNotJSON, u, s.opts.Items, head(body))
	}
	l := &loaded{req: req, items: items}
	enc, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	l.sum = sha256.Sum256(enc)
	if len(items) == 0 {
		return l, nil // an empty page ends the list
	}
	if prev != nil && prev.sum == l.sum {
		return nil, fmt.Errorf("%w: %s answered the same items as the page before (does the API ignore its paging parameters?)", ErrPaging, u)
	}
	switch s.opts.Pagination.Type {
	case PagingPage:
		l.next = &request{Page: req.Page + 1}
	case PagingOffset:
		l.next = &request{Offset: req.Offset + len(items)}
	case PagingCursor:
		c, _, err := s.cursorPtr.Get(doc)
		token := ""
		if err == nil {
			switch c := c.(type) {
			case string:
				token = c
			case json.Number:
				token = c.String()
			}
		}
		if token != "" {
			if token == req.Cursor {
				return nil, fmt.Errorf("%w: %s named its own cursor %q as the next", ErrPaging, u, token)
			}
			l.next = &request{Cursor: token}
		}
	case PagingLink:
		if next := nextLink(resp.Header.Values("Link"), resp.Request.URL); next != "" {
			if next == u {
				return nil, fmt.Errorf("%w: %s named itself as the next page", ErrPaging, u)
			}
			l.next = &request{URL: next}
		}
	}
	return l, nil
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

// nextLink finds the target of rel="next" in RFC 8288 Link header values, resolved against the
// URL of the request.
func nextLink(values []string, base *url.URL) string {
	for _, v := range values {
		for len(v) > 0 {
			start := strings.IndexByte(v, '<')
			end := strings.IndexByte(v, '>')
			if start < 0 || end < start {
				break
			}
			target := v[start+1 : end]
			rest := v[end+1:]
			// The link's parameters run to the next link, which starts with "<".
			params := rest
			if i := strings.IndexByte(rest, '<'); i >= 0 {
				params = rest[:i]
			}
			for _, param := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						ref, err := url.Parse(target)
						if err != nil {
							return ""
						}
						return base.ResolveReference(ref).String()
					}
				}
			}
			v = rest[len(params):]
		}
	}
	return ""
}

// more tells whether items follow the current page, fetching the next page when needed.
func (s *Source) more(ctx context.Context) (bool, error) {
	cur := s.pages[0]
	if cur.next == nil {
		return false, nil
	}
	if len(s.pages) < 2 {
		p, err := s.fetch(ctx, *cur.next, cur)
		if err != nil {
			return false, err
		}
		s.pages = append(s.pages, p)
	}
	return len(s.pages[1].items) > 0, nil
}

// Read returns the next item as a record.
func (s *Source) Read(ctx context.Context) (connectors.Record, error) {
	if s.done {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	for {
		if len(s.pages) == 0 {
			p, err := s.fetch(ctx, s.pos.Request, nil)
			if err != nil {
				return connectors.Record{}, err
			}
			s.pages = []*loaded{p}
			s.pos.Item = min(s.pos.Item, len(p.items))
		}
		cur := s.pages[0]
		if s.pos.Item < len(cur.items) {
			rec, err := s.record(cur.items[s.pos.Item])
			if err != nil {
				return connectors.Record{}, err
			}
			after := s.pos
			after.Item++
			pop := false
			if after.Item == len(cur.items) {
				more, err := s.more(ctx)
				if err != nil {
					return connectors.Record{}, err
				}
				if more {
					after.Request, after.Item, pop = *cur.next, 0, true
				} else {
					after.Complete = true
				}
			}
			if rec.Position, err = json.Marshal(after); err != nil {
				return connectors.Record{}, err
			}
			if pop {
				s.pages = s.pages[1:]
			}
			s.pos = after
			return rec, nil
		}
		more, err := s.more(ctx)
		if err != nil {
			return connectors.Record{}, err
		}
		if !more {
			s.done = true
			return connectors.Record{}, connectors.ErrEndOfInput
		}
		s.pos.Request, s.pos.Item = *cur.next, 0
		s.pages = s.pages[1:]
	}
}

// record maps one item. An item the mapping cannot read — no id, or an object where a value
// should be — goes to dlq with the reasons, keyed by the hash of its content.
func (s *Source) record(item any) (connectors.Record, error) {
	var f servicedoc.Fields
	var reasons []event.Reason
	for _, fl := range s.fields {
		v, _, err := fl.ptr.Get(item)
		if err != nil {
			continue // absent: the field stays empty
		}
		var val string
		switch v := v.(type) {
		case nil:
		case string:
			val = strings.TrimSpace(v)
		case json.Number:
			val = v.String()
		case bool:
			val = strconv.FormatBool(v)
		default:
			reasons = append(reasons, event.Reason{Field: fl.name, Message: fmt.Sprintf("%s points at an object or array, not a value", fl.pointer)})
			continue
		}
		*f.Field(fl.name) = val
	}
	if f.ID == "" {
		reasons = append(reasons, event.Reason{Field: "id", Message: fmt.Sprintf("the item has no id at %s", s.opts.Fields["id"])})
	}
	if len(reasons) > 0 {
		raw, err := json.Marshal(item)
		if err != nil {
			return connectors.Record{}, err
		}
		id := f.ID
		if id == "" {
			sum := sha256.Sum256(raw)
			id = "item-" + hex.EncodeToString(sum[:8])
		}
		return connectors.Record{ExternalID: id, EntityType: schemas.EntityService, Op: event.OpUpsert, Data: raw, Reasons: reasons}, nil
	}
	doc, id, err := servicedoc.Build(f, s.opts.City)
	if err != nil {
		return connectors.Record{}, fmt.Errorf("error encoding item %s: %w", f.ID, err)
	}
	return connectors.Record{ExternalID: id, EntityType: schemas.EntityService, Op: event.OpUpsert, Data: doc}, nil
}

// Ack does nothing: the runner stores the position.
func (s *Source) Ack(context.Context, connectors.Position) error { return nil }

// Close drops the pages held.
func (s *Source) Close(context.Context) error {
	s.pages = nil
	return nil
}
