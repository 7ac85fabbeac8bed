package dlq

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/event"
	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "dlq", FS: sub}
}

// Statuses of a dead letter.
const (
	// StatusOpen: nothing was done about it yet.
	StatusOpen = "open"
	// StatusReplayed: it was sent through the pipeline again (ReplayMode says how).
	StatusReplayed = "replayed"
	// StatusResolved: a later version of the same record reached the catalog.
	StatusResolved = "resolved"
)

// Replay modes.
const (
	// ModeRepublish: the original record went back to raw under a new event id.
	ModeRepublish = "republish"
	// ModeRerun: the source was read again in full, with its current config.
	ModeRerun = "rerun"
)

// Paging limits of List.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Entry is one indexed dead letter.
type Entry struct {
	ID         string         `json:"id"`
	Time       time.Time      `json:"time"`
	Source     string         `json:"source"`
	Stage      string         `json:"stage"`
	Key        string         `json:"key"`
	Subject    string         `json:"subject,omitempty"`
	EntityType string         `json:"entity_type,omitempty"`
	Op         string         `json:"op,omitempty"`
	Reasons    []event.Reason `json:"reasons"`
	Status     string         `json:"status"`
	// ReplayedAt, ReplayMode and ReplayEventID say how it was replayed; ResolvedAt when a later
	// version landed.
	ReplayedAt    *time.Time `json:"replayed_at,omitempty"`
	ReplayMode    string     `json:"replay_mode,omitempty"`
	ReplayEventID string     `json:"replay_event_id,omitempty"`
	ResolvedAt    *time.Time `json:"resolved_at,omitempty"`
	// RetryOf is the earlier dead letter whose replay this one is (the record still failed);
	// RetriedAs the later dead letter its replay produced.
	RetryOf   string `json:"retry_of,omitempty"`
	RetriedAs string `json:"retried_as,omitempty"`
	// OriginalID and RecordTime come from the rejected record's envelope, when it had one.
	OriginalID      string     `json:"original_id,omitempty"`
	RecordTime      *time.Time `json:"record_time,omitempty"`
	RecordTopic     string     `json:"record_topic,omitempty"`
	RecordPartition int        `json:"record_partition"`
	RecordOffset    int64      `json:"record_offset"`
	DLQTopic        string     `json:"dlq_topic"`
	DLQPartition    int        `json:"dlq_partition"`
	DLQOffset       int64      `json:"dlq_offset"`
	// Original is the rejected record (Get only): its envelope as JSON, or OriginalText when it
	// was not JSON.
	Original     json.RawMessage `json:"original,omitempty"`
	OriginalText string          `json:"original_text,omitempty"`

	// original holds the stored bytes for Insert and Replay.
	original     []byte
	originalJSON bool
	seq          int64
}

// Filter selects dead letters; the filters are cumulative. Listing is newest first.
type Filter struct {
	Source string
	// Reason matches, case-insensitively, a substring of any reason's field or message.
	Reason string
	Stage  string
	Status string
	// Limit is 1 to MaxLimit (DefaultLimit when 0).
	Limit int
	// After is the Next cursor of the previous page.
	After string
}

// Page is a page of dead letters; Next is empty on the last page.
type Page struct {
	Items []Entry `json:"items"`
	Next  string  `json:"next,omitempty"`
}

// Store reads and writes the dead-letter index.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns the index on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// FieldError is a filter field that cannot be used, with the reason.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FilterError lists every unusable field of a filter; it wraps ErrInvalidFilter.
type FilterError struct{ Fields []FieldError }

func (e *FilterError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return ErrInvalidFilter.Error() + ": " + strings.Join(parts, "; ")
}

func (e *FilterError) Unwrap() error { return ErrInvalidFilter }

// check validates the filter and returns the cursor's position (0: from the newest).
func (f *Filter) check() (int64, error) {
	var fe FilterError
	switch f.Status {
	case "", StatusOpen, StatusReplayed, StatusResolved:
	default:
		fe.Fields = append(fe.Fields, FieldError{"status", fmt.Sprintf("must be one of open, replayed, resolved; got %q", f.Status)})
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		fe.Fields = append(fe.Fields, FieldError{"limit", fmt.Sprintf("must be between 1 and %d", MaxLimit)})
	}
	var after int64
	if f.After != "" {
		n, err := strconv.ParseInt(f.After, 10, 64)
		if err != nil || n <= 0 {
			fe.Fields = append(fe.Fields, FieldError{"after", "not a cursor this API returned (use the previous page's next)"})
		}
		after = n
	}
	if len(fe.Fields) > 0 {
		return 0, &fe
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	return after, nil
}

// columns read for an entry; links to earlier and later dead letters of the same record are
// computed when read, so they hold whatever order the replay and the indexing happened in.
const columns = `d.seq, d.id, d.time, d.source, d.stage, d.key, d.subject, d.entity_type, d.op, d.reasons,
	d.status, d.replayed_at, coalesce(d.replay_mode, ''), coalesce(d.replay_event_id, ''), d.resolved_at,
	coalesce((SELECT o.id FROM dlq_dead_letters o WHERE o.key = d.key AND o.seq < d.seq
	  AND o.replayed_at IS NOT NULL AND o.replayed_at <= coalesce(d.record_time, d.time) ORDER BY o.seq DESC LIMIT 1), ''),
	coalesce((SELECT n.id FROM dlq_dead_letters n WHERE d.replayed_at IS NOT NULL AND n.key = d.key AND n.seq > d.seq
	  AND coalesce(n.record_time, n.time) >= d.replayed_at ORDER BY n.seq LIMIT 1), ''),
	d.original_id, d.record_time, d.record_topic, d.record_partition, d.record_offset,
	d.dlq_topic, d.dlq_partition, d.dlq_offset`

func scanEntry(row pgx.Row, e *Entry, extra ...any) error {
	var reasons []byte
	dest := []any{&e.seq, &e.ID, &e.Time, &e.Source, &e.Stage, &e.Key, &e.Subject, &e.EntityType, &e.Op, &reasons,
		&e.Status, &e.ReplayedAt, &e.ReplayMode, &e.ReplayEventID, &e.ResolvedAt, &e.RetryOf, &e.RetriedAs,
		&e.OriginalID, &e.RecordTime, &e.RecordTopic, &e.RecordPartition, &e.RecordOffset,
		&e.DLQTopic, &e.DLQPartition, &e.DLQOffset}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	if err := json.Unmarshal(reasons, &e.Reasons); err != nil {
		return fmt.Errorf("error decoding reasons of dead letter %s: %w", e.ID, err)
	}
	if e.Reasons == nil {
		e.Reasons = []event.Reason{}
	}
	return nil
}

// List returns a page of dead letters, newest first.
func (s *Store) List(ctx context.Context, f Filter) (Page, error) {
	after, err := f.check()
	if err != nil {
		return Page{}, err
	}
	var w where
	if f.Source != "" {
		w.add("d.source = %s", f.Source)
	}
	if f.Stage != "" {
		w.add("d.stage = %s", f.Stage)
	}
	if f.Status != "" {
		w.add("d.status = %s", f.Status)
	}
	if f.Reason != "" {
		w.add(`EXISTS (SELECT 1 FROM jsonb_array_elements(d.reasons) r
			WHERE strpos(lower(r->>'field'), lower(%[1]s)) > 0 OR strpos(lower(r->>'message'), lower(%[1]s)) > 0)`, f.Reason)
	}
	if after > 0 {
		w.add("d.seq < %s", after)
	}
	w.args = append(w.args, f.Limit+1)
	q := "SELECT " + columns + " FROM dlq_dead_letters d" + w.sql() + " ORDER BY d.seq DESC LIMIT $" + strconv.Itoa(len(w.args))
	rows, err := s.pool.Query(ctx, q, w.args...)
	if err != nil {
		return Page{}, fmt.Errorf("error listing dead letters: %w", err)
	}
	defer rows.Close()
	p := Page{Items: []Entry{}}
	for rows.Next() {
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			return Page{}, fmt.Errorf("error listing dead letters: %w", err)
		}
		p.Items = append(p.Items, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("error listing dead letters: %w", err)
	}
	if len(p.Items) > f.Limit {
		p.Items = p.Items[:f.Limit]
		p.Next = strconv.FormatInt(p.Items[f.Limit-1].seq, 10)
	}
	return p, nil
}

// Get returns one dead letter with its original record, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Entry, error) {
	var e Entry
	row := s.pool.QueryRow(ctx, "SELECT "+columns+", d.original, d.original_json FROM dlq_dead_letters d WHERE d.id = $1", id)
	if err := scanEntry(row, &e, &e.original, &e.originalJSON); err != nil {
		if err == pgx.ErrNoRows {
			return Entry{}, fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		return Entry{}, fmt.Errorf("error reading dead letter %s: %w", id, err)
	}
	if e.originalJSON {
		e.Original = e.original
	} else {
		e.OriginalText = string(e.original)
	}
	return e, nil
}

// Insert adds dead letters in one statement, in order; ids already indexed are left as they are
// (a re-delivered dead letter). It returns how many were new.
func (s *Store) Insert(ctx context.Context, es []Entry) (int64, error) {
	if len(es) == 0 {
		return 0, nil
	}
	n := len(es)
	var (
		ids, sources, stages, keys, subjects, types, ops, reasons = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		origIDs, recTopics, dlqTopics                             = make([]string, n), make([]string, n), make([]string, n)
		times, recTimes                                           = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		originals                                                 = make([][]byte, n)
		isJSON                                                    = make([]bool, n)
		recParts, dlqParts                                        = make([]int32, n), make([]int32, n)
		recOffs, dlqOffs                                          = make([]int64, n), make([]int64, n)
	)
	for i, e := range es {
		rs := e.Reasons
		if rs == nil {
			rs = []event.Reason{}
		}
		b, err := json.Marshal(rs)
		if err != nil {
			return 0, fmt.Errorf("error encoding reasons of dead letter %s: %w", e.ID, err)
		}
		ids[i], sources[i], stages[i], keys[i], subjects[i], types[i], ops[i], reasons[i] = e.ID, e.Source, e.Stage, e.Key, e.Subject, e.EntityType, e.Op, string(b)
		origIDs[i], recTopics[i], dlqTopics[i] = e.OriginalID, e.RecordTopic, e.DLQTopic
		times[i] = pgtype.Timestamptz{Time: e.Time, Valid: true}
		if e.RecordTime != nil {
			recTimes[i] = pgtype.Timestamptz{Time: *e.RecordTime, Valid: true}
		}
		originals[i], isJSON[i] = e.original, e.originalJSON
		if originals[i] == nil {
			originals[i] = []byte{}
		}
		recParts[i], dlqParts[i], recOffs[i], dlqOffs[i] = int32(e.RecordPartition), int32(e.DLQPartition), e.RecordOffset, e.DLQOffset
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO dlq_dead_letters (id, time, source, stage, key, subject, entity_type, op, reasons, original,
			original_json, original_id, record_time, record_topic, record_partition, record_offset,
			dlq_topic, dlq_partition, dlq_offset)
		SELECT id, time, source, stage, key, subject, entity_type, op, reasons::jsonb, original,
			original_json, original_id, record_time, record_topic, record_partition, record_offset,
			dlq_topic, dlq_partition, dlq_offset
		FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::bytea[], $11::bool[], $12::text[], $13::timestamptz[], $14::text[],
			$15::int4[], $16::int8[], $17::text[], $18::int4[], $19::int8[]) WITH ORDINALITY
			AS u(id, time, source, stage, key, subject, entity_type, op, reasons, original,
			original_json, original_id, record_time, record_topic, record_partition, record_offset,
			dlq_topic, dlq_partition, dlq_offset, ord)
		ORDER BY ord
		ON CONFLICT (id) DO NOTHING`,
		ids, times, sources, stages, keys, subjects, types, ops, reasons, originals, isJSON, origIDs, recTimes,
		recTopics, recParts, recOffs, dlqTopics, dlqParts, dlqOffs)
	if err != nil {
		return 0, fmt.Errorf("error indexing %d dead letters: %w", n, err)
	}
	return tag.RowsAffected(), nil
}

// ReasonCount is how many dead letters of a source have a reason on a field.
type ReasonCount struct {
	Source string `json:"source"`
	Field  string `json:"field"`
	Open   int64  `json:"open"`
	Total  int64  `json:"total"`
}

// SourceCount is how many dead letters a source has, per status.
type SourceCount struct {
	Source   string `json:"source"`
	Open     int64  `json:"open"`
	Replayed int64  `json:"replayed"`
	Resolved int64  `json:"resolved"`
}

// Counts returns the dead letters per source and status, and per source and reason field (the
// field, not the message, since messages often quote the record's values).
func (s *Store) Counts(ctx context.Context) ([]SourceCount, []ReasonCount, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT source, count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'replayed'),
		       count(*) FILTER (WHERE status = 'resolved')
		FROM dlq_dead_letters GROUP BY source ORDER BY source`)
	if err != nil {
		return nil, nil, fmt.Errorf("error counting dead letters: %w", err)
	}
	sources, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceCount, error) {
		var c SourceCount
		err := r.Scan(&c.Source, &c.Open, &c.Replayed, &c.Resolved)
		return c, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("error counting dead letters: %w", err)
	}
	rows, err = s.pool.Query(ctx, `
		SELECT d.source, coalesce(r->>'field', ''), count(DISTINCT d.id) FILTER (WHERE d.status = 'open'), count(DISTINCT d.id)
		FROM dlq_dead_letters d, jsonb_array_elements(d.reasons) r
		GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return nil, nil, fmt.Errorf("error counting dead-letter reasons: %w", err)
	}
	reasons, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReasonCount, error) {
		var c ReasonCount
		err := r.Scan(&c.Source, &c.Field, &c.Open, &c.Total)
		return c, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("error counting dead-letter reasons: %w", err)
	}
	return sources, reasons, nil
}

// openBySource counts the open dead letters per source, for the gauge.
func (s *Store) openBySource(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT source, count(*) FROM dlq_dead_letters WHERE status = 'open' GROUP BY source`)
	if err != nil {
		return nil, fmt.Errorf("error counting open dead letters: %w", err)
	}
	out := map[string]int64{}
	var src string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&src, &n}, func() error { out[src] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("error counting open dead letters: %w", err)
	}
	return out, nil
}

// replayable returns the dead letters Replay needs (with their originals): the given ids, or the
// open dead letters of a source after seq, up to limit, in indexing order.
func (s *Store) replayable(ctx context.Context, ids []string, source string, after int64, limit int) ([]Entry, error) {
	var rows pgx.Rows
	var err error
	const q = "SELECT " + columns + ", d.original, d.original_json FROM dlq_dead_letters d "
	if ids != nil {
		rows, err = s.pool.Query(ctx, q+"WHERE d.id = ANY($1) ORDER BY d.seq", ids)
	} else {
		rows, err = s.pool.Query(ctx, q+"WHERE d.source = $1 AND d.status = 'open' AND d.seq > $2 ORDER BY d.seq LIMIT $3", source, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("error reading dead letters to replay: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		if err := scanEntry(rows, &e, &e.original, &e.originalJSON); err != nil {
			return nil, fmt.Errorf("error reading dead letters to replay: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// markRepublished marks open dead letters replayed, each as the event id its original went out as.
func (s *Store) markRepublished(ctx context.Context, ids, eventIDs []string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE dlq_dead_letters d SET status = 'replayed', replay_mode = 'republish', replayed_at = $3, replay_event_id = u.ev
		FROM unnest($1::text[], $2::text[]) AS u(id, ev)
		WHERE d.id = u.id AND d.status = 'open'`, ids, eventIDs, at)
	if err != nil {
		return fmt.Errorf("error marking %d dead letters replayed: %w", len(ids), err)
	}
	return nil
}

// markRerun marks dead letters replayed by a re-run of their source: the given ids, or (ids nil)
// every open dead letter of source. It returns the ids it marked.
func (s *Store) markRerun(ctx context.Context, ids []string, source string, at time.Time) ([]string, error) {
	var rows pgx.Rows
	var err error
	if ids != nil {
		rows, err = s.pool.Query(ctx, `
			UPDATE dlq_dead_letters SET status = 'replayed', replay_mode = 'rerun', replayed_at = $2, replay_event_id = NULL
			WHERE id = ANY($1) AND status = 'open' RETURNING id`, ids, at)
	} else {
		rows, err = s.pool.Query(ctx, `
			UPDATE dlq_dead_letters SET status = 'replayed', replay_mode = 'rerun', replayed_at = $2, replay_event_id = NULL
			WHERE source = $1 AND status = 'open' RETURNING id`, source, at)
	}
	if err != nil {
		return nil, fmt.Errorf("error marking dead letters of %s replayed: %w", source, err)
	}
	marked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("error marking dead letters of %s replayed: %w", source, err)
	}
	return marked, nil
}

// unmarkRerun reopens dead letters markRerun marked, when the re-run could not start.
func (s *Store) unmarkRerun(ctx context.Context, ids []string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE dlq_dead_letters SET status = 'open', replay_mode = NULL, replayed_at = NULL
		WHERE id = ANY($1) AND status = 'replayed' AND replay_mode = 'rerun' AND replayed_at = $2`, ids, at)
	if err != nil {
		return fmt.Errorf("error reopening %d dead letters: %w", len(ids), err)
	}
	return nil
}

// unresolved is a dead letter that may have been superseded: its record key and the time a later
// version must be seen after.
type unresolved struct {
	seq        int64
	id         string
	source     string
	subject    string
	since      time.Time
	inclusive  bool
	entityType string
}

// unresolvedAfter returns up to limit dead letters not yet resolved, after seq.
func (s *Store) unresolvedAfter(ctx context.Context, after int64, limit int) ([]unresolved, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT seq, id, source, subject, entity_type,
		       coalesce(replayed_at, record_time, time), replayed_at IS NOT NULL
		FROM dlq_dead_letters WHERE status <> 'resolved' AND seq > $1 AND subject <> ''
		ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("error reading unresolved dead letters: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (unresolved, error) {
		var u unresolved
		err := r.Scan(&u.seq, &u.id, &u.source, &u.subject, &u.entityType, &u.since, &u.inclusive)
		return u, err
	})
}

// markResolved marks dead letters resolved.
func (s *Store) markResolved(ctx context.Context, ids []string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE dlq_dead_letters SET status = 'resolved', resolved_at = $2 WHERE id = ANY($1) AND status <> 'resolved'`, ids, at)
	if err != nil {
		return fmt.Errorf("error marking %d dead letters resolved: %w", len(ids), err)
	}
	return nil
}

// where accumulates filter conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition; %s (or %[1]s, repeated) in cond stands for the argument's placeholder.
func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf(cond, "$"+strconv.Itoa(len(w.args))))
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
