package residents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"socialhub/connectors"
)

// tablePosition is the keyset cursor: the (updated_at, id) of the last row read. The id keeps its
// type: a JSON number for integer ids, a string for the others.
type tablePosition struct {
	UpdatedAt time.Time       `json:"updated_at"`
	ID        json.RawMessage `json:"id"`
}

// TableSource reads the registry's table incrementally: each run reads the rows changed since
// the previous run's last row, ordered by (updated_at, id), page by page.
//
// It relies on the registry setting updated_at on every change. A transaction that commits a row
// with an updated_at older than rows already read is not seen until the row changes again; a
// registry with long transactions should give a view whose updated_at is the commit time.
type TableSource struct {
	name  string
	opts  Options
	dsn   string
	build *builder

	conn     *pgx.Conn
	query    string
	first    string // the query of the first page of a run from the beginning
	cursor   *cursor
	page     []connectors.Record
	next     int
	lastPage bool
	done     bool
}

type cursor struct {
	updatedAt time.Time
	id        any
}

// Open connects to the registry and prepares to read after pos.
func (s *TableSource) Open(ctx context.Context, pos connectors.Position) error {
	s.cursor, s.page, s.next, s.lastPage, s.done = nil, nil, 0, false, false
	if len(pos) > 0 {
		var p tablePosition
		if err := json.Unmarshal(pos, &p); err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
		id, err := decodeID(p.ID)
		if err != nil {
			return fmt.Errorf("error reading saved position %q: %w", pos, err)
		}
		s.cursor = &cursor{updatedAt: p.UpdatedAt, id: id}
	}
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: error connecting to the registry database: %w", connectors.ErrBackoffRetry, err)
	}
	s.conn = conn
	s.first, s.query = s.queries()
	return nil
}

// queries builds the page queries. Every identifier is quoted: column and table names come from
// the config file, never spliced raw into SQL.
func (s *TableSource) queries() (string, string) {
	c := s.opts.Columns
	cols := []string{c.UpdatedAt, c.ID}
	for _, f := range c.fields()[2:] {
		if *f.col != "" {
			cols = append(cols, *f.col)
		}
	}
	if s.opts.DeletedColumn != "" {
		cols = append(cols, s.opts.DeletedColumn)
	}
	quoted := make([]string, len(cols))
	for i, col := range cols {
		quoted[i] = pgx.Identifier{col}.Sanitize()
	}
	table := pgx.Identifier(strings.Split(s.opts.Table, ".")).Sanitize()
	upd, id := quoted[0], quoted[1]
	sel := "SELECT " + strings.Join(quoted, ", ") + " FROM " + table
	order := " ORDER BY " + upd + ", " + id + " LIMIT $1"
	return sel + order, sel + " WHERE (" + upd + ", " + id + ") > ($2, $3)" + order
}

// Read returns the next row as a record.
func (s *TableSource) Read(ctx context.Context) (connectors.Record, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	if s.done {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	if s.next >= len(s.page) {
		if s.lastPage {
			s.done = true
			return connectors.Record{}, connectors.ErrEndOfInput
		}
		if err := s.fetchPage(ctx); err != nil {
			return connectors.Record{}, err
		}
		if len(s.page) == 0 {
			s.done = true
			return connectors.Record{}, connectors.ErrEndOfInput
		}
	}
	rec := s.page[s.next]
	s.page[s.next] = connectors.Record{}
	s.next++
	return rec, nil
}

// fetchPage reads the page after the cursor and converts it whole, so the connection is free
// between pages and a row that does not convert fails the read at a known place.
func (s *TableSource) fetchPage(ctx context.Context) error {
	if s.conn == nil {
		return errors.New("residents table source read before Open")
	}
	var rows pgx.Rows
	var err error
	if s.cursor == nil {
		rows, err = s.conn.Query(ctx, s.first, s.opts.PageSize)
	} else {
		rows, err = s.conn.Query(ctx, s.query, s.opts.PageSize, s.cursor.updatedAt, s.cursor.id)
	}
	if err != nil {
		return s.queryError(ctx, err)
	}
	defer rows.Close()
	s.page, s.next = s.page[:0], 0
	fields := rows.FieldDescriptions()
	index := make(map[string]int, len(fields))
	for i, f := range fields {
		index[f.Name] = i
	}
	cols := newColumns(s.conn.TypeMap(), fields)
	var values []any
	get := func(col string) any {
		if col == "" {
			return nil
		}
		return values[index[col]]
	}
	delCol := -1
	if s.opts.DeletedColumn != "" {
		delCol = len(fields) - 1
	}
	for rows.Next() {
		values, err = cols.decode(rows.RawValues())
		if err != nil {
			return fmt.Errorf("error reading the registry's rows: %w", err)
		}
		upd, ok := values[0].(time.Time)
		if !ok {
			return fmt.Errorf("%w: column %s (columns.updated_at) is %T, want a timestamp", connectors.ErrBadOptions, s.opts.Columns.UpdatedAt, values[0])
		}
		id, rawID, err := encodeID(values[1])
		if err != nil {
			return fmt.Errorf("%w: column %s (columns.id): %w", connectors.ErrBadOptions, s.opts.Columns.ID, err)
		}
		deleted := false
		if delCol >= 0 {
			d, ok := values[delCol].(bool)
			if !ok && values[delCol] != nil {
				return fmt.Errorf("%w: column %s (deleted_column) is %T, want a boolean", connectors.ErrBadOptions, s.opts.DeletedColumn, values[delCol])
			}
			deleted = d
		}
		rec, err := s.build.build(get, rowRef{"id", id}, deleted)
		if err != nil {
			return err
		}
		rec.Position = appendPosition(nil, upd, rawID)
		s.page = append(s.page, rec)
		if s.cursor == nil {
			s.cursor = &cursor{}
		}
		s.cursor.updatedAt, s.cursor.id = upd, id
	}
	if err := rows.Err(); err != nil {
		return s.queryError(ctx, err)
	}
	s.lastPage = len(s.page) < s.opts.PageSize
	return nil
}

// columns decodes a page's rows as pgx's Rows.Values does, looking each column's type up once per
// page and filling one slice for every row: the builder keeps none of it.
type columns struct {
	m      *pgtype.Map
	fields []pgconn.FieldDescription
	types  []*pgtype.Type // nil: a type pgx does not know
	values []any
}

func newColumns(m *pgtype.Map, fields []pgconn.FieldDescription) *columns {
	c := &columns{m: m, fields: fields, types: make([]*pgtype.Type, len(fields)), values: make([]any, len(fields))}
	for i, f := range fields {
		if t, ok := m.TypeForOID(f.DataTypeOID); ok {
			c.types[i] = t
		}
	}
	return c
}

func (c *columns) decode(raw [][]byte) ([]any, error) {
	for i, buf := range raw {
		fd := &c.fields[i]
		switch {
		case buf == nil:
			c.values[i] = nil
		case c.types[i] != nil:
			v, err := c.types[i].Codec.DecodeValue(c.m, fd.DataTypeOID, fd.Format, buf)
			if err != nil {
				return nil, fmt.Errorf("error decoding column %s: %w", fd.Name, err)
			}
			c.values[i] = v
		case fd.Format == pgx.TextFormatCode:
			c.values[i] = string(buf)
		default:
			c.values[i] = bytes.Clone(buf)
		}
	}
	return c.values, nil
}

// queryError tells a mistake in the options (no such table or column) from a failure worth
// retrying (the connection dropped).
func (s *TableSource) queryError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P01", "42703", "3F000": // undefined table, column, schema
			return fmt.Errorf("%w: reading %s: %w", connectors.ErrBadOptions, s.opts.Table, err)
		}
		if strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57") || pgErr.Code == "40001" || pgErr.Code == "40P01" {
			return fmt.Errorf("%w: reading %s: %w", connectors.ErrBackoffRetry, s.opts.Table, err)
		}
		return fmt.Errorf("error reading %s: %w", s.opts.Table, err)
	}
	return fmt.Errorf("%w: reading %s: %w", connectors.ErrBackoffRetry, s.opts.Table, err)
}

// appendPosition appends the position after a row: tablePosition as json.Marshal writes it.
func appendPosition(b []byte, updatedAt time.Time, id json.RawMessage) connectors.Position {
	if b == nil {
		b = make([]byte, 0, len(`{"updated_at":"","id":}`)+len(time.RFC3339Nano)+len(id))
	}
	b = append(b, `{"updated_at":"`...)
	b = updatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","id":`...)
	b = append(b, id...)
	return append(b, '}')
}

// encodeID returns the id as a query argument and as JSON for the position: integers stay
// numbers, everything else (text, uuid) travels as text, which PostgreSQL casts back to the
// column's type.
func encodeID(v any) (any, json.RawMessage, error) {
	switch x := v.(type) {
	case int16:
		return int64(x), json.RawMessage(strconv.FormatInt(int64(x), 10)), nil
	case int32:
		return int64(x), json.RawMessage(strconv.FormatInt(int64(x), 10)), nil
	case int64:
		return x, json.RawMessage(strconv.FormatInt(x, 10)), nil
	case nil:
		return nil, nil, errors.New("a row has no id (NULL)")
	case [16]byte:
		s := fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
		b, _ := json.Marshal(s)
		return s, b, nil
	default:
		s := text(x)
		b, err := json.Marshal(s)
		return s, b, err
	}
}

func decodeID(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, errors.New("no id")
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

// Ack does nothing: the runner stores the position.
func (s *TableSource) Ack(context.Context, connectors.Position) error { return nil }

// Close closes the connection to the registry.
func (s *TableSource) Close(ctx context.Context) error {
	s.page = nil
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close(ctx)
	s.conn = nil
	if err != nil {
		return fmt.Errorf("error closing the registry connection: %w", err)
	}
	return nil
}
