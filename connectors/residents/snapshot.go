package residents

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
	"socialhub/internal/event"
	"socialhub/schemas"
)

// snapshotPosition says which content was being read (its sha256) and how many of its rows are
// durable downstream. A changed file starts again from its first row; replaying rows is harmless
// because every later stage is idempotent.
type snapshotPosition struct {
	SHA256 string `json:"sha256"`
	Row    int    `json:"row"`
	fetch.Validators
}

// SnapshotSource reads a full export of the registry, one file per run. It is a
// connectors.Snapshotter: a resident the previous complete snapshot held and this one does not
// becomes a delete, under the same pseudonym as its upserts.
type SnapshotSource struct {
	name    string
	opts    Options
	fetcher *fetch.Fetcher
	build   *builder

	pos        snapshotPosition
	snapshotID string
	done       bool

	// csv
	csv   *stdcsv.Reader
	index map[string]int
	cells []string
	// jsonl
	lines []byte
	obj   map[string]json.RawMessage
	// posPrefix and posSuffix surround the row number in the position, which is the same JSON
	// for every row but that number.
	posPrefix, posSuffix []byte
}

// SnapshotID names the snapshot being read: the sha256 of the file's content; "" when the server
// said the file has not changed since the last complete run (nothing is read, nothing deleted).
func (s *SnapshotSource) SnapshotID() string { return s.snapshotID }

// Open fetches the file and positions the reader after the rows already durable.
func (s *SnapshotSource) Open(ctx context.Context, pos connectors.Position) error {
	s.done, s.snapshotID, s.csv, s.lines = false, "", nil, nil
	var prev snapshotPosition
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &prev); err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
	}
	// Only ask the server "has it changed?" for content the previous run did read.
	f, err := s.fetcher.ReadFile(ctx, s.opts.Path, s.opts.URL, prev.Validators)
	if err != nil {
		return err
	}
	if f.NotModified {
		s.pos, s.done = prev, true
		return nil
	}
	sum := sha256.Sum256(f.Body)
	s.pos = snapshotPosition{SHA256: hex.EncodeToString(sum[:]), Validators: f.Validators}
	s.snapshotID = s.pos.SHA256
	if err := s.positionTemplate(); err != nil {
		return err
	}
	switch s.opts.Format {
	case FormatCSV:
		if err := s.openCSV(f.Body); err != nil {
			return err
		}
	case FormatJSONL:
		body := bytes.TrimPrefix(f.Body, []byte("\xef\xbb\xbf"))
		if !utf8.Valid(body) {
			return errors.New("the JSONL file is not valid UTF-8")
		}
		s.lines = body
	}
	if prev.SHA256 == s.pos.SHA256 {
		// Same content: skip what earlier runs made durable.
		for s.pos.Row < prev.Row {
			ok, err := s.skip()
			if err != nil {
				return fmt.Errorf("error skipping to row %d: %w", prev.Row, err)
			}
			if !ok {
				break
			}
		}
	}
	return nil
}

// positionTemplate prepares position(): the JSON of s.pos split around its row number.
func (s *SnapshotSource) positionTemplate() error {
	const marker = -424242
	p := s.pos
	p.Row = marker
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(strconv.Itoa(marker)))
	s.posPrefix, s.posSuffix = b[:i], b[i+len(strconv.Itoa(marker)):]
	return nil
}

// position returns the JSON of s.pos, as json.Marshal writes it, without reflecting on it per row.
func (s *SnapshotSource) position() connectors.Position {
	b := make([]byte, 0, len(s.posPrefix)+len(s.posSuffix)+8)
	b = append(b, s.posPrefix...)
	b = strconv.AppendInt(b, int64(s.pos.Row), 10)
	return append(b, s.posSuffix...)
}

func (s *SnapshotSource) openCSV(raw []byte) error {
	text, err := fetch.DecodeText(raw, s.opts.Encoding)
	if err != nil {
		return err
	}
	r := stdcsv.NewReader(bytes.NewReader(text))
	r.Comma, _ = utf8.DecodeRuneInString(s.opts.Delimiter)
	r.FieldsPerRecord = -1 // a short row is the validator's to judge, not a reason to stop
	r.LazyQuotes = true
	r.ReuseRecord = true
	s.csv = r
	s.index = map[string]int{}
	if !*s.opts.Header {
		for i := 1; i <= 200; i++ {
			s.index[strconv.Itoa(i)] = i - 1
		}
		return nil
	}
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		s.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("error reading header: %w", err)
	}
	for i, h := range header {
		s.index[strings.TrimSpace(h)] = i
	}
	var missing []string
	for _, f := range s.opts.Columns.fields()[2:] {
		if *f.col == "" {
			continue
		}
		if _, ok := s.index[*f.col]; !ok {
			missing = append(missing, fmt.Sprintf("columns.%s = %q", f.name, *f.col))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the file has no column for %s; its header is: %s",
			connectors.ErrBadOptions, strings.Join(missing, ", "), strings.Join(header, " | "))
	}
	return nil
}

// skip passes over one row; false at the end of the file.
func (s *SnapshotSource) skip() (bool, error) {
	if s.csv != nil {
		if _, err := s.csv.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		s.pos.Row++
		return true, nil
	}
	if len(s.lines) == 0 {
		return false, nil
	}
	_, s.lines = nextLine(s.lines)
	s.pos.Row++
	return true, nil
}

func nextLine(b []byte) ([]byte, []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// Read returns the next row as a record.
func (s *SnapshotSource) Read(ctx context.Context) (connectors.Record, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	if s.done || (s.csv == nil && s.lines == nil) {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	for {
		var get getter
		var rowErr string
		if s.csv != nil {
			cells, err := s.csv.Read()
			if errors.Is(err, io.EOF) {
				s.done = true
				return connectors.Record{}, connectors.ErrEndOfInput
			}
			s.pos.Row++
			if err != nil {
				rowErr = "the row is not valid CSV: " + err.Error()
			} else {
				if blank(cells) {
					continue
				}
				s.cells = cells
				get = s.cell
			}
		} else {
			if len(s.lines) == 0 {
				s.done = true
				return connectors.Record{}, connectors.ErrEndOfInput
			}
			var line []byte
			line, s.lines = nextLine(s.lines)
			s.pos.Row++
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if err := s.decodeObject(line); err != nil {
				rowErr = "the line is not a JSON object: " + err.Error()
			} else {
				get = s.member
			}
		}
		ref := "row " + strconv.Itoa(s.pos.Row)
		pos := s.position()
		if rowErr != "" {
			// Never echo the row: it holds names and a national id.
			data, err := json.Marshal(rejection{Row: ref, Reason: rowErr})
			if err != nil {
				return connectors.Record{}, err
			}
			return connectors.Record{
				ExternalID: "rejected-row-" + strconv.Itoa(s.pos.Row), EntityType: schemas.EntityResident, Op: event.OpUpsert,
				Data: data, Position: pos, Reasons: []event.Reason{{Field: "(root)", Message: rowErr}},
			}, nil
		}
		rec, err := s.build.build(get, rowRef{"row", s.pos.Row}, false)
		if err != nil {
			return connectors.Record{}, err
		}
		rec.Position = pos
		return rec, nil
	}
}

func (s *SnapshotSource) cell(col string) any {
	if col == "" {
		return nil
	}
	i, ok := s.index[col]
	if !ok || i >= len(s.cells) {
		return nil
	}
	return s.cells[i]
}

// decodeObject splits a JSONL line into its members, undecoded: only the mapped ones are ever
// decoded (see member), so names and documents are not even turned into strings. The map is
// reused from line to line.
func (s *SnapshotSource) decodeObject(line []byte) error {
	if line[0] != '{' {
		return errors.New("the line does not start with {")
	}
	if s.obj == nil {
		s.obj = make(map[string]json.RawMessage, 32)
	}
	clear(s.obj)
	// json's messages quote no input beyond a character: safe to pass on.
	return json.Unmarshal(line, &s.obj)
}

// member decodes one member of the current JSONL object: a string, a json.Number, a bool or nil.
func (s *SnapshotSource) member(col string) any {
	raw := s.obj[col]
	if col == "" || len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '"':
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil
		}
		return v
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	case '{', '[':
		// Not a value a field can take: keep its text for the validator to report.
		return string(raw)
	}
	return json.Number(raw)
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
func (s *SnapshotSource) Ack(context.Context, connectors.Position) error { return nil }

// Close releases the file's contents.
func (s *SnapshotSource) Close(context.Context) error {
	s.csv, s.lines, s.cells, s.obj = nil, nil, nil, nil
	return nil
}
