package web

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"socialhub/internal/store"
	"socialhub/schemas"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "web", FS: sub}
}

// Search is one search a resident made: the category and the place filter they chose.
type Search struct {
	Category string `json:"category"`           // a taxonomy term id
	Okrug    string `json:"okrug,omitempty"`    // an okrug's short name, or empty
	District string `json:"district,omitempty"` // a district's name, or empty
}

// SearchCount is a row of the analytics: how many searches a day saw for a category and place.
type SearchCount struct {
	Day      string `json:"day"` // YYYY-MM-DD, Moscow time
	Category string `json:"category"`
	Name     string `json:"category_name"`
	Okrug    string `json:"okrug"`
	District string `json:"district"`
	Count    int64  `json:"count"`
}

// moscow is the city's time zone (UTC+3 all year): a day of the analytics is a Moscow day.
var moscow = time.FixedZone("MSK", 3*60*60)

// Stats counts navigator searches in PostgreSQL and in Prometheus.
type Stats struct {
	pool    *pgxpool.Pool
	now     func() time.Time
	counter *prometheus.CounterVec
}

// NewStats returns the analytics; reg (may be nil) receives socialhub_navigator_searches_total.
func NewStats(pool *pgxpool.Pool, reg prometheus.Registerer) *Stats {
	s := &Stats{pool: pool, now: time.Now}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "socialhub_navigator_searches_total",
		Help: "Navigator searches by category (taxonomy term id), okrug and district; empty when not filtered.",
	}, []string{"category", "okrug", "district"})
	s.counter = c
	if reg != nil {
		if err := reg.Register(c); err != nil {
			// Two hubs on one registry (tests) share the counter.
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					s.counter = existing
				}
			} else {
				panic(err) // a programming error, like prometheus.MustRegister's
			}
		}
	}
	return s
}

// check refuses what is not in the reference lists: the labels stay bounded, whatever a caller
// sends.
func (q Search) check() []fieldError {
	var errs []fieldError
	if _, ok := schemas.TaxonomyTermByID(q.Category); !ok {
		errs = append(errs, fieldError{Field: "category", Message: "not a taxonomy term id"})
	}
	okrugs := map[string]bool{}
	for _, o := range schemas.Okrugs() {
		okrugs[o.Short] = true
	}
	if q.Okrug != "" && !okrugs[q.Okrug] {
		errs = append(errs, fieldError{Field: "okrug", Message: "not an okrug's short name"})
	}
	if q.District != "" {
		found := false
		for _, d := range schemas.Districts() {
			if d.Name == q.District {
				found = true
				if q.Okrug != "" && d.Okrug != q.Okrug {
					errs = append(errs, fieldError{Field: "district", Message: "not a district of okrug " + q.Okrug})
				}
				break
			}
		}
		if !found {
			errs = append(errs, fieldError{Field: "district", Message: "not a district or settlement of Moscow"})
		}
	}
	return errs
}

// Record counts one search. It returns ErrInvalid for a category, okrug or district the reference
// lists do not hold.
func (s *Stats) Record(ctx context.Context, q Search) error {
	if errs := q.check(); len(errs) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, errs[0].Field, errs[0].Message)
	}
	day := s.now().In(moscow).Format(time.DateOnly)
	_, err := s.pool.Exec(ctx, `
		INSERT INTO web_searches (day, category, okrug, district, count) VALUES ($1, $2, $3, $4, 1)
		ON CONFLICT (day, category, okrug, district) DO UPDATE SET count = web_searches.count + 1`,
		day, q.Category, q.Okrug, q.District)
	if err != nil {
		return fmt.Errorf("error recording a search: %w", err)
	}
	s.counter.WithLabelValues(q.Category, q.Okrug, q.District).Inc()
	return nil
}

// Counts returns the counts of the days from..to (inclusive, YYYY-MM-DD), most searched first
// within each day, latest day first.
func (s *Stats) Counts(ctx context.Context, from, to time.Time) ([]SearchCount, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT to_char(day, 'YYYY-MM-DD'), category, okrug, district, count FROM web_searches
		WHERE day BETWEEN $1 AND $2 ORDER BY day DESC, count DESC, category, okrug, district`,
		from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("error reading search counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SearchCount, error) {
		var c SearchCount
		err := row.Scan(&c.Day, &c.Category, &c.Okrug, &c.District, &c.Count)
		if t, ok := schemas.TaxonomyTermByID(c.Category); ok {
			c.Name = t.Name
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("error reading search counts: %w", err)
	}
	return out, nil
}
