package csv

import (
	"bytes"
	"context"
	"crypto/sha256"
	stdcsv "encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
	"socialhub/connectors/servicedoc"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// KindName is the name of this kind in the config.
const KindName = "csv"

// Kind returns the kind for the registry.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:        KindName,
		Description: "a department's service-point list as CSV, from a path or an HTTP(S) URL (UTF-8 or Windows-1251)",
		New:         New,
	}
}

// position is this kind's cursor: which content it was reading and how many data rows of it are
// durable downstream. A changed file (other hash) starts again from its first row; replaying rows
// is harmless because every later stage is idempotent. Complete marks the position after the last
// row: only then does the next run ask the server "changed since?" — a run cut short must fetch
// the same content again to finish it, whatever the server's validators say.
type position struct {
	SHA256       string `json:"sha256"`
	Row          int    `json:"row"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Complete     bool   `json:"complete,omitempty"`
}

// column is one mapped field and the index of its column.
type column struct {
	field string
	index int
}

// Source reads one CSV file per run. It is a connectors.Snapshotter: the file is the department's
// whole list, so a record missing from a newer file is gone.
type Source struct {
	name    string
	opts    Options
	fetcher *fetch.Fetcher

	pos     position
	reader  *stdcsv.Reader
	columns []column
	// next is the row after the one Read returns last (a copy), so the position of the last row
	// can say it is complete; nextErr is the error reading it.
	next    []string
	nextRow int
	nextErr error
	done    bool
}

var _ connectors.Snapshotter = (*Source)(nil)

// New builds a csv source from its config.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	opts.setDefaults()
	if err := opts.validate(deps.Env()); err != nil {
		return nil, fmt.Errorf("%w: sources[%s].options: %w", connectors.ErrBadOptions, cfg.Name, err)
	}
	return &Source{name: cfg.Name, opts: opts, fetcher: fetch.New(opts.Fetch, deps.Env())}, nil
}

// Open fetches the file and positions the reader after the rows already durable.
func (s *Source) Open(ctx context.Context, pos connectors.Position) error {
	var prev position
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &prev); err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
	}
	var validators fetch.Validators
	if prev.Complete {
		validators = fetch.Validators{ETag: prev.ETag, LastModified: prev.LastModified}
	}
	f, err := s.fetcher.ReadFile(ctx, s.opts.Path, s.opts.URL, validators)
	if err != nil {
		return fmt.Errorf("error fetching the list of %s: %w", s.name, err)
	}
	if f.NotModified {
		// The list read to its end last time is still the list: the same snapshot, nothing new.
		s.pos, s.done = prev, true
		return nil
	}
	sum := sha256.Sum256(f.Body)
	s.pos = position{SHA256: hex.EncodeToString(sum[:]), ETag: f.Validators.ETag, LastModified: f.Validators.LastModified}
	text, err := fetch.DecodeText(f.Body, s.opts.Encoding)
	if err != nil {
		return fmt.Errorf("error decoding the list of %s: %w", s.name, err)
	}
	r := stdcsv.NewReader(bytes.NewReader(text))
	r.Comma, _ = utf8.DecodeRuneInString(s.opts.Delimiter)
	r.FieldsPerRecord = -1 // a short or long row is the validator's to judge, not a reason to stop
	r.LazyQuotes = true
	r.ReuseRecord = true
	s.reader = r
	if err := s.readHeader(); err != nil {
		return err
	}
	if s.done {
		return nil
	}
	if prev.SHA256 == s.pos.SHA256 {
		// Same content: skip what earlier runs made durable.
		for s.pos.Row < prev.Row {
			if _, err := r.Read(); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("error skipping to row %d: %w", prev.Row, err)
			}
			s.pos.Row++
		}
	}
	s.nextRow = s.pos.Row
	s.advance()
	return nil
}

// SnapshotID names the content being read: a department's list is the whole list, so the hash of
// the file is the snapshot. A 304 answer keeps the previous content's id.
func (s *Source) SnapshotID() string { return s.pos.SHA256 }

func (s *Source) readHeader() error {
	index := make(map[string]int)
	names := servicedoc.Names()
	if !*s.opts.Header {
		for i := 1; i <= 200; i++ {
			index[strconv.Itoa(i)] = i - 1
		}
	} else {
		header, err := s.reader.Read()
		if errors.Is(err, io.EOF) {
			s.done = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("error reading header: %w", err)
		}
		for i, h := range header {
			index[strings.TrimSpace(h)] = i
		}
		var missing []string
		for _, name := range names {
			col := *s.opts.Columns.Field(name)
			if col == "" {
				continue
			}
			if _, ok := index[col]; !ok {
				missing = append(missing, fmt.Sprintf("columns.%s = %q", name, col))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: the file has no column for %s; its header is: %s",
				connectors.ErrBadOptions, strings.Join(missing, ", "), strings.Join(header, " | "))
		}
	}
	s.columns = s.columns[:0]
	for _, name := range names {
		if i, ok := index[*s.opts.Columns.Field(name)]; ok {
			s.columns = append(s.columns, column{field: name, index: i})
		}
	}
	return nil
}

// advance reads ahead to the next row that is not blank.
func (s *Source) advance() {
	s.next = s.next[:0]
	for {
		cells, err := s.reader.Read()
		if errors.Is(err, io.EOF) {
			s.next = nil
			return
		}
		if err != nil {
			s.next, s.nextErr = nil, fmt.Errorf("error reading row %d: %w", s.nextRow+1, err)
			return
		}
		s.nextRow++
		if blank(cells) {
			continue
		}
		s.next = append(s.next[:0], cells...)
		return
	}
}

// Read returns the next row as a record.
func (s *Source) Read(ctx context.Context) (connectors.Record, error) {
	if s.done {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	if s.next == nil {
		if s.nextErr != nil {
			return connectors.Record{}, s.nextErr
		}
		s.done = true
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	var f servicedoc.Fields
	for _, c := range s.columns {
		if c.index < len(s.next) {
			*f.Field(c.field) = strings.TrimSpace(s.next[c.index])
		}
	}
	s.pos.Row = s.nextRow
	s.advance()
	s.pos.Complete = s.next == nil && s.nextErr == nil
	doc, id, err := servicedoc.Build(f, s.opts.City)
	if err != nil {
		return connectors.Record{}, fmt.Errorf("error encoding row %d: %w", s.pos.Row, err)
	}
	if id == "" {
		// Keep the row (the validator rejects it for its missing id) under a key that says where it was.
		id = "row-" + strconv.Itoa(s.pos.Row)
	}
	pos, err := json.Marshal(s.pos)
	if err != nil {
		return connectors.Record{}, err
	}
	return connectors.Record{ExternalID: id, EntityType: schemas.EntityService, Op: event.OpUpsert, Data: doc, Position: pos}, nil
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// Ack does nothing: the runner stores the position.
func (s *Source) Ack(context.Context, connectors.Position) error { return nil }

// Close releases the file's contents.
func (s *Source) Close(context.Context) error {
	s.reader, s.next = nil, nil
	return nil
}
