package ngogrants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// KindName is the name of this kind in the config.
const KindName = "ngogrants"

// Kind returns the kind for the registry.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:        KindName,
		Description: "a grant operator's list of winning applications (CSV or XLSX, file or HTTP(S)): organizations with their grants",
		New:         New,
	}
}

// position is this kind's cursor: which content it was reading, how many of its data rows are
// durable downstream, and whether the list was read to its end (only then does the next run ask
// the server "changed since?": a half-read list must be fetched again to be finished).
type position struct {
	SHA256       string `json:"sha256"`
	Row          int    `json:"row"`
	Complete     bool   `json:"complete,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Source reads one grant list per run.
type Source struct {
	name    string
	opts    Options
	fetcher *fetch.Fetcher
	regions map[string]bool

	pos      position // pos.Row counts the data rows consumed so far
	snapshot string
	rows     rowReader
	index    [numFields]int // column of each field, -1 when unmapped
	seen     map[string]int // application number → the data row that used it first
	next     *connectors.Record
	nextRow  int
	eof      bool
}

// New builds an ngogrants source from its config.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	opts.setDefaults()
	if err := opts.validate(deps.Env()); err != nil {
		return nil, fmt.Errorf("%w: sources[%s].options: %w", connectors.ErrBadOptions, cfg.Name, err)
	}
	s := &Source{name: cfg.Name, opts: opts, fetcher: fetch.New(opts.Options, deps.Env())}
	if len(opts.Regions) > 0 {
		if opts.Columns.Region == "" {
			return nil, fmt.Errorf("%w: sources[%s].options: regions needs columns.region", connectors.ErrBadOptions, cfg.Name)
		}
		s.regions = map[string]bool{}
		for _, r := range opts.Regions {
			s.regions[regionKey(r)] = true
		}
	}
	return s, nil
}

// SnapshotID is the SHA-256 of the list being read: every complete run reads the whole list. It is
// "" when the server said the list did not change, since then this run read nothing.
func (s *Source) SnapshotID() string { return s.snapshot }

// Open fetches the list and positions the reader after the rows already durable.
func (s *Source) Open(ctx context.Context, pos connectors.Position) error {
	var prev position
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &prev); err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
	}
	s.pos, s.snapshot, s.rows, s.next, s.eof = position{}, "", nil, nil, false
	s.seen = map[string]int{}
	var validators fetch.Validators
	if prev.Complete {
		validators = fetch.Validators{ETag: prev.ETag, LastModified: prev.LastModified}
	}
	file, err := s.fetcher.ReadFile(ctx, s.opts.Path, s.opts.URL, validators)
	if err != nil {
		return fmt.Errorf("error fetching the grant list: %w", err)
	}
	if file.NotModified {
		s.pos, s.eof = prev, true
		return nil
	}
	sum := sha256.Sum256(file.Body)
	s.snapshot = hex.EncodeToString(sum[:])
	s.pos = position{SHA256: s.snapshot, ETag: file.Validators.ETag, LastModified: file.Validators.LastModified}
	rows, _, err := newRowReader(file.Body, &s.opts)
	if err != nil {
		return err
	}
	s.rows = rows
	if err := s.readHeader(); err != nil {
		return err
	}
	if prev.SHA256 == s.snapshot && prev.Row > 0 {
		// Same content: go through what earlier runs made durable, keeping the duplicate check's
		// memory, without handing it out again.
		for !s.eof && s.pos.Row < prev.Row {
			if _, err := s.fill(); err != nil {
				return fmt.Errorf("error skipping to row %d: %w", prev.Row, err)
			}
		}
	}
	return nil
}

// Fields of a row, in Columns.fields order.
const (
	fApplicationNumber = iota
	fINN
	fOGRN
	fName
	fRegion
	fTitle
	fAmount
	fStartDate
	fEndDate
	fStatus
	numFields
)

func (s *Source) readHeader() error {
	fields := s.opts.Columns.fields()
	if !*s.opts.Header {
		for i, f := range fields {
			s.index[i] = -1
			if f.column != "" {
				n, _ := strconv.Atoi(f.column) // validated
				s.index[i] = n - 1
			}
		}
		return nil
	}
	// Lists often open with a title and a blank line above the table: the header is the first row
	// that names the required columns, among the first few.
	var first []string
	for tries := 0; tries < maxTitleRows; {
		cells, err := s.rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("error reading the header: %w", err)
		}
		if blank(cells) {
			continue
		}
		tries++
		header := slices.Clone(cells)
		if first == nil {
			first = header
		}
		byName := map[string]int{}
		for i, h := range header {
			k := headerKey(h)
			if _, dup := byName[k]; !dup {
				byName[k] = i
			}
		}
		var missing []string
		required := 0
		for i, f := range fields {
			s.index[i] = -1
			if f.column == "" {
				continue
			}
			col, ok := byName[headerKey(f.column)]
			if !ok {
				missing = append(missing, fmt.Sprintf("columns.%s = %q", f.name, f.column))
				continue
			}
			if i == fApplicationNumber || i == fINN || i == fName {
				required++
			}
			s.index[i] = col
		}
		if required < 3 {
			continue // a title row
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: the list has no column for %s; its header is: %s",
				connectors.ErrBadOptions, strings.Join(missing, ", "), showRow(header))
		}
		return nil
	}
	if first == nil {
		s.eof = true // an empty list
		return nil
	}
	c := s.opts.Columns
	return fmt.Errorf("%w: no header row names columns.application_number = %q, columns.inn = %q and columns.organization_name = %q; the first row is: %s",
		connectors.ErrBadOptions, c.ApplicationNumber, c.INN, c.OrganizationName, showRow(first))
}

// maxTitleRows bounds how many non-blank rows are searched for the header.
const maxTitleRows = 10

func showRow(cells []string) string {
	shown := make([]string, len(cells))
	for i, h := range cells {
		shown[i] = clean(h)
	}
	return strings.Join(shown, " | ")
}

// headerKey compares column names without case, quotes' HTML entities, line breaks or extra spaces.
func headerKey(s string) string { return strings.ToLower(clean(s)) }

// regionKey compares regions without case, extra spaces and a leading «г.» or «город».
func regionKey(s string) string {
	k := strings.ToLower(clean(s))
	for _, p := range []string{"г. ", "г.", "город "} {
		k = strings.TrimPrefix(k, p)
	}
	return strings.TrimSpace(k)
}

// Read returns the next row as a record. It reads one record ahead, so that the last record's
// position can say the list was read to its end.
func (s *Source) Read(ctx context.Context) (connectors.Record, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	if s.next == nil {
		rec, err := s.fill()
		if err != nil {
			return connectors.Record{}, err
		}
		if rec == nil {
			return connectors.Record{}, connectors.ErrEndOfInput
		}
		s.next, s.nextRow = rec, s.pos.Row
	}
	cur, curRow := s.next, s.nextRow
	rec, err := s.fill()
	if err != nil {
		return connectors.Record{}, err
	}
	s.next, s.nextRow = rec, s.pos.Row
	p := s.pos
	p.Row, p.Complete = curRow, rec == nil
	b, err := json.Marshal(p)
	if err != nil {
		return connectors.Record{}, fmt.Errorf("error encoding position: %w", err)
	}
	cur.Position = b
	return *cur, nil
}

// fill reads rows until one makes a record; nil at the end of the list.
func (s *Source) fill() (*connectors.Record, error) {
	for !s.eof {
		cells, err := s.rows.next()
		if errors.Is(err, io.EOF) {
			s.eof = true
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("error reading data row %d: %w", s.pos.Row+1, err)
		}
		s.pos.Row++
		if blank(cells) {
			continue
		}
		r := s.row(cells)
		if s.regions != nil && !s.regions[regionKey(r.region)] {
			continue
		}
		return s.record(&r), nil
	}
	return nil, nil
}

func (s *Source) row(cells []string) row {
	get := func(f int) string {
		i := s.index[f]
		if i < 0 || i >= len(cells) {
			return ""
		}
		return clean(cells[i])
	}
	return row{
		number: s.pos.Row, applicationNumber: get(fApplicationNumber), inn: get(fINN), ogrn: get(fOGRN),
		name: get(fName), region: get(fRegion), title: get(fTitle), amount: get(fAmount),
		startDate: get(fStartDate), endDate: get(fEndDate), status: get(fStatus),
	}
}

func (s *Source) record(r *row) *connectors.Record {
	rec := &connectors.Record{ExternalID: r.applicationNumber, EntityType: schemas.EntityOrganization, Op: event.OpUpsert}
	doc, reasons := build(r, s.opts.Operator)
	if r.applicationNumber == "" {
		rec.ExternalID = "row-" + strconv.Itoa(r.number)
	} else if first, dup := s.seen[r.applicationNumber]; dup {
		// Two rows under one number: the first is the record, the second goes to dlq under a key of
		// its own, so it neither overwrites the first nor vanishes.
		rec.ExternalID = r.applicationNumber + "#row-" + strconv.Itoa(r.number)
		reasons = append(reasons, event.Reason{Field: "funding.0.application_number",
			Message: fmt.Sprintf("application number %s is already used by data row %d", r.applicationNumber, first)})
	} else {
		s.seen[r.applicationNumber] = r.number
	}
	if len(reasons) > 0 {
		rec.Reasons, rec.Data = reasons, rawRow(r)
		return rec
	}
	rec.Data = doc
	return rec
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

// Close releases the list.
func (s *Source) Close(context.Context) error {
	if s.rows == nil {
		return nil
	}
	err := s.rows.close()
	s.rows = nil
	if err != nil {
		return fmt.Errorf("error closing the list: %w", err)
	}
	return nil
}
