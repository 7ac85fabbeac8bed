package quality

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"socialhub/internal/catalog"
	"socialhub/internal/store"
	"socialhub/internal/validate"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "quality", FS: sub}
}

// Fields of the catalog shares, as in Catalog.With and the gauge's field label.
const (
	FieldPhone       = "phone"
	FieldAddress     = "address"
	FieldHours       = "hours"
	FieldCoordinates = "coordinates"
)

// Kinds of quality_fields rows.
const (
	kindRejected   = "rejected"
	kindNormalized = "normalized"
)

// DefaultInterval is how often Run refreshes the gauges when Options.Interval is zero.
const DefaultInterval = 30 * time.Second

// Quality is what the hub knows of one source's data.
type Quality struct {
	Source string `json:"source"`
	// Read, Valid and Rejected count the records the validate stage read from raw, passed to valid
	// and sent to dlq; each raw position counts once, however often it is read.
	Read     int64 `json:"read"`
	Valid    int64 `json:"valid"`
	Rejected int64 `json:"rejected"`
	// RejectedByField counts rejected records by the field of a reason ("(envelope)", "(root)",
	// "service_at_locations.*.location.latitude": indices are written *); a record with reasons
	// at several fields counts under each.
	RejectedByField map[string]int64 `json:"rejected_by_field"`
	// NormalizedFields counts the values normalization rewrote in valid records, by kind of field
	// (phone, email, website, schedule, schedule_unparsed, district, okrug, name).
	NormalizedFields map[string]int64 `json:"normalized_fields"`
	Catalog          Catalog          `json:"catalog"`
}

// Catalog is the share of a source's catalog records with each kind of detail.
type Catalog struct {
	Records int64              `json:"records"`
	With    map[string]int64   `json:"with"`  // records with a phone, address, hours, coordinates
	Share   map[string]float64 `json:"share"` // With / Records, 0 when there are no records
}

// Options configures a Store.
type Options struct {
	Pool    *pgxpool.Pool
	Catalog *catalog.Store
	// Registerer receives the gauge socialhub_catalog_share; without one there is none.
	Registerer prometheus.Registerer
	// Interval is how often Run refreshes the gauge (DefaultInterval when zero).
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Store keeps and reads the quality figures. It is the validate stage's Tally.
type Store struct {
	opts  Options
	share *prometheus.GaugeVec
	seen  map[[2]string]bool // gauge label sets set by the last refresh
}

// New returns the store.
func New(opts Options) *Store {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts}
	if opts.Registerer != nil {
		s.share = register(opts.Registerer, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "socialhub_catalog_share",
			Help: "Share (0 to 1) of a source's catalog records with a phone, an address, hours or coordinates.",
		}, []string{"source", "field"}))
	}
	return s
}

// register registers c, or returns the collector already registered under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error, like prometheus.MustRegister's
	}
	return c
}

// tally is one source's figures in a batch.
type tally struct {
	read, valid, rejected int64
	fields                map[[2]string]int64 // kind, field
}

// Add counts a batch of the validate stage's outcomes, skipping the raw positions it counted
// before (validate.Tally). One transaction: the positions and the figures move together.
func (s *Store) Add(ctx context.Context, outcomes []validate.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	type part struct {
		topic     string
		partition int
	}
	var topics []string
	var partitions []int32
	seenPart := map[part]bool{}
	for _, o := range outcomes {
		if p := (part{o.Topic, o.Partition}); !seenPart[p] {
			seenPart[p] = true
			topics, partitions = append(topics, o.Topic), append(partitions, int32(o.Partition))
		}
	}
	return pgx.BeginFunc(ctx, s.opts.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO quality_positions (topic, partition, next_offset)
			SELECT t, p, 0 FROM unnest($1::text[], $2::integer[]) AS k (t, p)
			ORDER BY 1, 2
			ON CONFLICT DO NOTHING`, topics, partitions); err != nil {
			return fmt.Errorf("error adding quality positions: %w", err)
		}
		// Locked in one order, so that stages sharing partitions' rows never deadlock.
		rows, err := tx.Query(ctx, `
			SELECT p.topic, p.partition, p.next_offset FROM quality_positions p
			JOIN unnest($1::text[], $2::integer[]) AS k (topic, partition) USING (topic, partition)
			ORDER BY 1, 2 FOR UPDATE OF p`, topics, partitions)
		if err != nil {
			return fmt.Errorf("error reading quality positions: %w", err)
		}
		next := map[part]int64{}
		for rows.Next() {
			var p part
			var n int64
			if err := rows.Scan(&p.topic, &p.partition, &n); err != nil {
				rows.Close()
				return fmt.Errorf("error reading quality positions: %w", err)
			}
			next[p] = n
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("error reading quality positions: %w", err)
		}

		bySource := map[string]*tally{}
		counted := map[part]int64{}
		for _, o := range outcomes {
			p := part{o.Topic, o.Partition}
			if o.Offset < next[p] {
				continue // counted already
			}
			counted[p] = max(counted[p], o.Offset+1)
			t := bySource[o.Source]
			if t == nil {
				t = &tally{fields: map[[2]string]int64{}}
				bySource[o.Source] = t
			}
			t.read++
			if o.Valid {
				t.valid++
				o.Normalized.Each(func(field string, n int) { t.fields[[2]string{kindNormalized, field}] += int64(n) })
				continue
			}
			t.rejected++
			seen := map[string]bool{}
			for _, f := range o.Fields {
				f = fieldPattern(f)
				if !seen[f] {
					seen[f] = true
					t.fields[[2]string{kindRejected, f}]++
				}
			}
		}
		if len(counted) == 0 {
			return nil
		}
		var srcs []string
		for src := range bySource {
			srcs = append(srcs, src)
		}
		slices.Sort(srcs)
		var read, valid, rejected []int64
		var fSrc, fKind, fField []string
		var fN []int64
		for _, src := range srcs {
			t := bySource[src]
			read, valid, rejected = append(read, t.read), append(valid, t.valid), append(rejected, t.rejected)
			keys := make([][2]string, 0, len(t.fields))
			for k := range t.fields {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
			for _, k := range keys {
				fSrc, fKind, fField, fN = append(fSrc, src), append(fKind, k[0]), append(fField, k[1]), append(fN, t.fields[k])
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO quality_sources AS q (source, read, valid, rejected, updated_at)
			SELECT *, $5::timestamptz FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
			ON CONFLICT (source) DO UPDATE SET read = q.read + excluded.read, valid = q.valid + excluded.valid,
				rejected = q.rejected + excluded.rejected, updated_at = excluded.updated_at`,
			srcs, read, valid, rejected, s.opts.Now()); err != nil {
			return fmt.Errorf("error adding quality figures: %w", err)
		}
		if len(fSrc) > 0 {
			if _, err := tx.Exec(ctx, `
				INSERT INTO quality_fields AS q (source, kind, field, n)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
				ON CONFLICT (source, kind, field) DO UPDATE SET n = q.n + excluded.n`,
				fSrc, fKind, fField, fN); err != nil {
				return fmt.Errorf("error adding quality figures: %w", err)
			}
		}
		topics, partitions = topics[:0], partitions[:0]
		var offsets []int64
		for p, n := range counted {
			topics, partitions, offsets = append(topics, p.topic), append(partitions, int32(p.partition)), append(offsets, n)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE quality_positions p SET next_offset = k.next_offset
			FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS k (topic, partition, next_offset)
			WHERE p.topic = k.topic AND p.partition = k.partition`, topics, partitions, offsets); err != nil {
			return fmt.Errorf("error moving quality positions: %w", err)
		}
		return nil
	})
}

// fieldPattern writes the indices of a field path as *, so that one field of every element of a
// list counts together.
func fieldPattern(field string) string {
	if !strings.ContainsAny(field, "0123456789") {
		return field
	}
	parts := strings.Split(field, ".")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, ".")
}

// SourceQuality returns the figures of one source; ErrUnknownSource when the hub has none.
func (s *Store) SourceQuality(ctx context.Context, source string) (Quality, error) {
	qs, err := s.read(ctx, source)
	if err != nil {
		return Quality{}, err
	}
	if len(qs) == 0 {
		return Quality{}, fmt.Errorf("%w: %q", ErrUnknownSource, source)
	}
	return qs[0], nil
}

// Qualities returns the figures of every source, sorted by name.
func (s *Store) Qualities(ctx context.Context) ([]Quality, error) { return s.read(ctx, "") }

// read returns the figures of source, or of every source ("").
func (s *Store) read(ctx context.Context, source string) ([]Quality, error) {
	by := map[string]*Quality{}
	get := func(src string) *Quality {
		q := by[src]
		if q == nil {
			q = &Quality{Source: src, RejectedByField: map[string]int64{}, NormalizedFields: map[string]int64{}}
			q.Catalog = Catalog{With: map[string]int64{}, Share: map[string]float64{}}
			for _, f := range []string{FieldPhone, FieldAddress, FieldHours, FieldCoordinates} {
				q.Catalog.With[f], q.Catalog.Share[f] = 0, 0
			}
			by[src] = q
		}
		return q
	}
	rows, err := s.opts.Pool.Query(ctx, `
		SELECT source, read, valid, rejected FROM quality_sources WHERE $1 = '' OR source = $1`, source)
	if err != nil {
		return nil, fmt.Errorf("error reading quality figures: %w", err)
	}
	var src string
	var read, valid, rejected int64
	if _, err := pgx.ForEachRow(rows, []any{&src, &read, &valid, &rejected}, func() error {
		q := get(src)
		q.Read, q.Valid, q.Rejected = read, valid, rejected
		return nil
	}); err != nil {
		return nil, fmt.Errorf("error reading quality figures: %w", err)
	}
	rows, err = s.opts.Pool.Query(ctx, `
		SELECT source, kind, field, n FROM quality_fields WHERE $1 = '' OR source = $1`, source)
	if err != nil {
		return nil, fmt.Errorf("error reading quality figures: %w", err)
	}
	var kind, field string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&src, &kind, &field, &n}, func() error {
		q := get(src)
		if kind == kindRejected {
			q.RejectedByField[field] = n
		} else {
			q.NormalizedFields[field] = n
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("error reading quality figures: %w", err)
	}
	cov, err := s.opts.Catalog.Coverage(ctx, source)
	if err != nil {
		return nil, err
	}
	for _, c := range cov {
		get(c.Source).Catalog = catalogShares(c)
	}
	out := make([]Quality, 0, len(by))
	for _, q := range by {
		out = append(out, *q)
	}
	slices.SortFunc(out, func(a, b Quality) int { return cmp.Compare(a.Source, b.Source) })
	return out, nil
}

func catalogShares(c catalog.Coverage) Catalog {
	out := Catalog{Records: c.Records, With: map[string]int64{
		FieldPhone: c.Phone, FieldAddress: c.Address, FieldHours: c.Hours, FieldCoordinates: c.Coordinates,
	}, Share: map[string]float64{}}
	for f, n := range out.With {
		out.Share[f] = 0
		if c.Records > 0 {
			out.Share[f] = float64(n) / float64(c.Records)
		}
	}
	return out
}

// Refresh sets the gauge from the catalog; sources gone from the catalog leave it.
func (s *Store) Refresh(ctx context.Context) error {
	if s.share == nil {
		return nil
	}
	cov, err := s.opts.Catalog.Coverage(ctx, "")
	if err != nil {
		return err
	}
	now := map[[2]string]bool{}
	for _, c := range cov {
		for f, v := range catalogShares(c).Share {
			s.share.WithLabelValues(c.Source, f).Set(v)
			now[[2]string{c.Source, f}] = true
		}
	}
	for k := range s.seen {
		if !now[k] {
			s.share.DeleteLabelValues(k[0], k[1])
		}
	}
	s.seen = now
	return nil
}

// Run refreshes the gauge every Interval until ctx ends. A failed refresh is logged and tried again
// at the next tick: the figures are for people, and a database hiccup must not stop the hub.
// The refresh reads the whole catalog; when it takes long (a large catalog), the next one waits
// longer, so that it never takes more than a twentieth of one database core.
func (s *Store) Run(ctx context.Context) error {
	for {
		start := time.Now()
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("quality: error refreshing catalog shares", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(refreshWait(s.opts.Interval, time.Since(start))):
		}
	}
}

// refreshWait is the pause after a refresh that took took: Interval, or twenty times took if longer.
func refreshWait(interval, took time.Duration) time.Duration { return max(interval, 20*took) }
