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
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"socialhub/connectors"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// KindName is the name of this kind in the config.
const KindName = "csv"

// maxFileBytes bounds what one run reads into memory.
const maxFileBytes = 1 << 30

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
// is harmless because every later stage is idempotent.
type position struct {
	SHA256       string `json:"sha256"`
	Row          int    `json:"row"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Source reads one CSV file per run.
type Source struct {
	name   string
	opts   Options
	client *http.Client

	pos    position
	reader *stdcsv.Reader
	index  map[string]int
	done   bool
}

// New builds a csv source from its config.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("%w: sources[%s].options: %w", connectors.ErrBadOptions, cfg.Name, err)
	}
	return &Source{name: cfg.Name, opts: opts, client: &http.Client{Timeout: opts.Timeout}}, nil
}

// Open fetches the file and positions the reader after the rows already durable.
func (s *Source) Open(ctx context.Context, pos connectors.Position) error {
	var prev position
	if len(pos) > 0 {
		if err := json.Unmarshal(pos, &prev); err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
	}
	raw, meta, notModified, err := s.fetch(ctx, prev)
	if err != nil {
		return err
	}
	if notModified {
		s.pos, s.done = prev, true
		return nil
	}
	sum := sha256.Sum256(raw)
	s.pos = position{SHA256: hex.EncodeToString(sum[:]), ETag: meta.etag, LastModified: meta.lastModified}
	text, err := s.decode(raw)
	if err != nil {
		return err
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
	return nil
}

type fetchMeta struct{ etag, lastModified string }

func (s *Source) fetch(ctx context.Context, prev position) ([]byte, fetchMeta, bool, error) {
	if s.opts.Path != "" {
		f, err := os.Open(s.opts.Path)
		if err != nil {
			return nil, fetchMeta{}, false, fmt.Errorf("error opening %s: %w", s.opts.Path, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
		if err != nil {
			return nil, fetchMeta{}, false, fmt.Errorf("error reading %s: %w", s.opts.Path, err)
		}
		if len(b) > maxFileBytes {
			return nil, fetchMeta{}, false, fmt.Errorf("file %s is larger than %d bytes", s.opts.Path, maxFileBytes)
		}
		return b, fetchMeta{}, false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.URL, nil)
	if err != nil {
		return nil, fetchMeta{}, false, fmt.Errorf("error building request for %s: %w", s.opts.URL, err)
	}
	// Only ask "has it changed?" once the previous content was read to its end.
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fetchMeta{}, false, fmt.Errorf("%w: error fetching %s: %w", connectors.ErrBackoffRetry, s.opts.URL, err)
	}
	defer resp.Body.Close()
	meta := fetchMeta{etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, meta, true, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, meta, false, fmt.Errorf("%w: %s answered %s", connectors.ErrBackoffRetry, s.opts.URL, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, meta, false, fmt.Errorf("%s answered %s", s.opts.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFileBytes+1))
	if err != nil {
		return nil, meta, false, fmt.Errorf("%w: error reading %s: %w", connectors.ErrBackoffRetry, s.opts.URL, err)
	}
	if len(b) > maxFileBytes {
		return nil, meta, false, fmt.Errorf("%s is larger than %d bytes", s.opts.URL, maxFileBytes)
	}
	return b, meta, false, nil
}

func (s *Source) decode(raw []byte) ([]byte, error) {
	enc := strings.ToLower(s.opts.Encoding)
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if enc == "auto" {
		enc = "utf-8"
		if !utf8.Valid(raw) {
			enc = "windows-1251"
		}
	}
	switch enc {
	case "windows-1251", "cp1251":
		b, err := charmap.Windows1251.NewDecoder().Bytes(raw)
		if err != nil {
			return nil, fmt.Errorf("error decoding Windows-1251: %w", err)
		}
		return b, nil
	default:
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("file is not valid UTF-8 (set encoding: windows-1251 if it is a Windows export)")
		}
		return raw, nil
	}
}

func (s *Source) readHeader() error {
	s.index = make(map[string]int)
	if !*s.opts.Header {
		for i := 1; i <= 200; i++ {
			s.index[strconv.Itoa(i)] = i - 1
		}
		return nil
	}
	header, err := s.reader.Read()
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
	c := s.opts.Columns
	for _, m := range []struct{ field, col string }{
		{"id", c.ID}, {"organization_id", c.OrganizationID}, {"organization_name", c.OrganizationName},
		{"inn", c.INN}, {"ogrn", c.OGRN}, {"service_name", c.ServiceName},
		{"service_description", c.ServiceDescription}, {"category", c.Category},
		{"location_name", c.LocationName}, {"address", c.Address}, {"district", c.District},
		{"okrug", c.Okrug}, {"postal_code", c.PostalCode}, {"latitude", c.Latitude},
		{"longitude", c.Longitude}, {"phone", c.Phone}, {"email", c.Email}, {"website", c.Website},
		{"hours", c.Hours}, {"organization_website", c.OrganizationWebsite},
	} {
		if m.col == "" {
			continue
		}
		if _, ok := s.index[m.col]; !ok {
			missing = append(missing, fmt.Sprintf("columns.%s = %q", m.field, m.col))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the file has no column for %s; its header is: %s",
			connectors.ErrBadOptions, strings.Join(missing, ", "), strings.Join(header, " | "))
	}
	return nil
}

// Read returns the next row as a record.
func (s *Source) Read(ctx context.Context) (connectors.Record, error) {
	if s.done {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	for {
		cells, err := s.reader.Read()
		if errors.Is(err, io.EOF) {
			s.done = true
			return connectors.Record{}, connectors.ErrEndOfInput
		}
		if err != nil {
			return connectors.Record{}, fmt.Errorf("error reading row %d: %w", s.pos.Row+1, err)
		}
		s.pos.Row++
		if blank(cells) {
			continue
		}
		doc, id, err := buildDocument(row{cells: cells, index: s.index}, s.opts.Columns, s.opts.City)
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
	s.reader = nil
	return nil
}
