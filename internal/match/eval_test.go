package match_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/csv"
	"socialhub/connectors/hsds"
	"socialhub/connectors/ngogrants"
	"socialhub/internal/catalog"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/metrics"
	"socialhub/internal/pgtest"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// demoWorld is the demo's overlapping sources, read by the real connectors and validated by the
// real validate stage, as catalog records, with their ground truth.
type demoWorld struct {
	records []catalog.Record
	truth   []demo.TruthRow
}

func sourceConfig(t testing.TB, name, kind string, opts map[string]any) config.Source {
	t.Helper()
	src, err := config.NewSource(name, kind, "", opts)
	require.NoError(t, err)
	return src
}

// loadDemo writes the demo sources (department CSV with rows service rows, the HSDS feed, two
// grant lists), reads them with their connectors and validates every record.
func loadDemo(t testing.TB, rows int) demoWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dept := demo.Options{Seed: 1, Rows: rows}
	f, err := os.Create(filepath.Join(dir, "department.csv"))
	require.NoError(t, err)
	_, err = demo.WriteDepartmentCSV(f, dept)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	feedOpts := demo.HSDSFeedOptions{Seed: 1}
	srv := httptest.NewServer(demo.HSDSFeed(feedOpts))
	t.Cleanup(srv.Close)

	var grantTruth []demo.TruthRow
	grantFiles := map[string]string{}
	for i, g := range []struct {
		source, file string
		write        func(w *bytes.Buffer, o demo.GrantsOptions) (demo.GrantsManifest, error)
	}{
		{hub.DemoFPGGrantsSource, "grants-fpg.xlsx", func(w *bytes.Buffer, o demo.GrantsOptions) (demo.GrantsManifest, error) {
			return demo.WriteGrantsXLSX(w, o)
		}},
		{hub.DemoCityGrants, "grants-city.csv", func(w *bytes.Buffer, o demo.GrantsOptions) (demo.GrantsManifest, error) {
			return demo.WriteGrantsCSVWindows1251(w, o)
		}},
	} {
		var buf bytes.Buffer
		man, err := g.write(&buf, demo.GrantsOptions{Seed: int64(1 + i), Source: g.source, Department: dept})
		require.NoError(t, err)
		path := filepath.Join(dir, g.file)
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		grantTruth = append(grantTruth, man.Truth...)
		grantFiles[g.source] = path
	}
	truth, err := hub.DemoTruth(dept, feedOpts, grantTruth)
	require.NoError(t, err)

	reg := connectors.NewRegistry(csv.Kind(), hsds.Kind(), ngogrants.Kind())
	sources := []config.Source{
		sourceConfig(t, hub.DemoSourceName, "csv", map[string]any{"path": filepath.Join(dir, "department.csv")}),
		sourceConfig(t, hub.DemoFeedSource, "hsds", map[string]any{"base_url": srv.URL, "per_page": 50, "rate_limit": -1}),
		sourceConfig(t, hub.DemoFPGGrantsSource, "ngogrants", map[string]any{"path": grantFiles[hub.DemoFPGGrantsSource]}),
		sourceConfig(t, hub.DemoCityGrants, "ngogrants", map[string]any{"path": grantFiles[hub.DemoCityGrants]}),
	}
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	topics := event.NewTopics(event.DefaultPrefix)
	stage := validate.New(validate.Options{Topics: topics, Validator: v, Metrics: metrics.New()})
	var w demoWorld
	w.truth = truth
	for _, sc := range sources {
		src, err := reg.New(sc, connectors.Deps{})
		require.NoError(t, err)
		require.NoError(t, src.Open(ctx, nil))
		for {
			rec, err := src.Read(ctx)
			if errors.Is(err, connectors.ErrEndOfInput) {
				break
			}
			require.NoError(t, err)
			if len(rec.Reasons) > 0 {
				continue // the source itself rejected it: it goes to dlq, not to the catalog
			}
			ev := &event.Event{
				ID: event.NewID(), Source: event.SourceURI(sc.Name), Type: event.Type("raw", rec.EntityType, event.OpUpsert),
				Subject: rec.ExternalID, Time: time.Now().UTC(), DataSchema: schemas.SchemaID(rec.EntityType),
				EntityType: rec.EntityType, Op: event.OpUpsert, Data: rec.Data,
			}
			ev.ContentHash, err = event.ContentHash(rec.Data)
			require.NoError(t, err)
			value, err := event.Marshal(ev)
			require.NoError(t, err)
			out, err := stage.Process(kafka.Message{Topic: topics.Raw, Key: []byte(event.Key(sc.Name, rec.ExternalID)), Value: value})
			require.NoError(t, err)
			if out.Topic != topics.Valid {
				continue
			}
			var vev event.Event
			require.NoError(t, event.Unmarshal(out.Value, &vev))
			w.records = append(w.records, catalog.Record{
				Source: vev.SourceName(), ExternalID: vev.Subject, EntityType: vev.EntityType, Op: vev.Op,
				ContentHash: vev.ContentHash, Doc: vev.Data, SeenAt: vev.Time,
			})
		}
		require.NoError(t, src.Close(ctx))
	}
	return w
}

// pairScore counts the pairs of truth rows (of records that reached the catalog) that resolution
// put together, against the pairs that are the same real thing.
type pairScore struct{ tp, fp, fn, rows int }

func (p pairScore) precision() float64 { return ratio(p.tp, p.tp+p.fp) }
func (p pairScore) recall() float64    { return ratio(p.tp, p.tp+p.fn) }
func (p pairScore) f1() float64 {
	pr, rc := p.precision(), p.recall()
	if pr+rc == 0 {
		return 0
	}
	return 2 * pr * rc / (pr + rc)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func evaluate(truth []demo.TruthRow, resolved map[string]string) map[string]pairScore {
	type row struct{ truth, canonical string }
	byType := map[string][]row{}
	for _, r := range truth {
		c, ok := resolved[r.EntityType+"/"+r.Source+"/"+r.ExternalID]
		if !ok {
			continue // a broken row: it never reached the catalog
		}
		byType[r.EntityType] = append(byType[r.EntityType], row{r.TruthID, c})
	}
	out := map[string]pairScore{}
	for typ, rows := range byType {
		var s pairScore
		s.rows = len(rows)
		for i := range rows {
			for j := i + 1; j < len(rows); j++ {
				same, merged := rows[i].truth == rows[j].truth, rows[i].canonical == rows[j].canonical
				switch {
				case same && merged:
					s.tp++
				case merged:
					s.fp++
				case same:
					s.fn++
				}
			}
		}
		out[typ] = s
	}
	return out
}

// TestEval runs the demo's overlapping sources through the real connectors, the real validate
// stage and the real catalog Apply, and measures the merges against the generator's ground truth
// (make eval: go test ./internal/match -run TestEval -v -count=1).
func TestEval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := loadDemo(t, 0)
	db := pgtest.NewDB(t, catalog.Migrations())
	store := catalog.NewStore(db.Pool)
	apply := func(recs []catalog.Record) {
		tx, err := db.Pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		_, err = store.Apply(ctx, tx, recs)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	for i := 0; i < len(w.records); i += 100 {
		apply(w.records[i:min(i+100, len(w.records))])
	}
	resolved, err := store.ResolvedIDs(ctx)
	require.NoError(t, err)
	scores := evaluate(w.truth, resolved)
	open, err := store.CountReview(ctx)
	require.NoError(t, err)
	members := len(resolved)
	types := make([]string, 0, len(scores))
	for typ := range scores {
		types = append(types, typ)
	}
	sort.Strings(types)
	fmt.Printf("entity resolution on the demo sources (%d records, %d source-level entities)\n", len(w.records), members)
	fmt.Printf("%-14s %6s %6s %6s %6s %9s %7s %7s\n", "entity", "rows", "tp", "fp", "fn", "precision", "recall", "f1")
	for _, typ := range types {
		s := scores[typ]
		fmt.Printf("%-14s %6d %6d %6d %6d %9.3f %7.3f %7.3f\n", typ, s.rows, s.tp, s.fp, s.fn, s.precision(), s.recall(), s.f1())
	}
	fmt.Printf("review queue: %d open items (%.2f%% of source-level entities)\n", open, 100*float64(open)/float64(members))
	require.GreaterOrEqual(t, scores["organization"].f1(), 0.95)
	require.GreaterOrEqual(t, scores["location"].f1(), 0.95)
	require.Less(t, float64(open)/float64(members), 0.02)

	// Replaying everything changes nothing.
	before, err := store.Digest(ctx)
	require.NoError(t, err)
	for i := 0; i < len(w.records); i += 500 {
		apply(w.records[i:min(i+500, len(w.records))])
	}
	after, err := store.Digest(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// benchRecords are the department listings of the demo generator (rows of them) of which 30%
// come a second time from another source, with their own ids and spelling (the organization's INN
// and the point's coordinates kept).
func benchRecords(tb testing.TB, rows int) []catalog.Record {
	tb.Helper()
	w := loadDemo(tb, rows)
	var recs []catalog.Record
	for i, r := range w.records {
		if r.Source != hub.DemoSourceName {
			continue
		}
		recs = append(recs, r)
		if i%10 >= 3 {
			continue
		}
		var doc map[string]any
		require.NoError(tb, json.Unmarshal(r.Doc, &doc))
		doc["id"] = "dup-" + r.ExternalID
		org := doc["organization"].(map[string]any)
		org["id"] = "dup-" + org["id"].(string)
		org["name"] = strings.ToUpper(org["name"].(string))
		for _, s := range doc["service_at_locations"].([]any) {
			s := s.(map[string]any)
			s["id"] = "dup-" + s["id"].(string)
			loc := s["location"].(map[string]any)
			loc["id"] = "dup-" + loc["id"].(string)
			for _, a := range loc["addresses"].([]any) {
				a := a.(map[string]any)
				a["address_1"] = strings.NewReplacer("ул.", "улица", "д.", "дом").Replace(a["address_1"].(string))
			}
		}
		raw, err := json.Marshal(doc)
		require.NoError(tb, err)
		hash, err := event.ContentHash(raw)
		require.NoError(tb, err)
		recs = append(recs, catalog.Record{Source: "dup-source", ExternalID: "dup-" + r.ExternalID, Op: catalog.OpUpsert,
			ContentHash: hash, Doc: raw, SeenAt: r.SeenAt})
	}
	return recs
}

// benchRows is the department rows of BenchmarkResolve: SOCIALHUB_BENCH_LISTINGS, 5000 by
// default (20000 or more show how the cost grows with the catalog).
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("SOCIALHUB_BENCH_LISTINGS")); err == nil && n > 0 {
		return n
	}
	return 5000
}

// BenchmarkResolve measures Apply with resolution on department listings of which 30% come a
// second time from another source (benchRecords): records/s of the whole load, in batches of 500
// as the resolve stage applies them.
func BenchmarkResolve(b *testing.B) {
	recs := benchRecords(b, benchRows())
	ctx := context.Background()
	b.ResetTimer()
	total := 0
	// CPU time of this process (Go only; PostgreSQL runs elsewhere) is steadier than records/s
	// on a shared machine.
	cpu0 := cpuTime()
	for b.Loop() {
		b.StopTimer()
		db := pgtest.NewDB(b, catalog.Migrations())
		store := catalog.NewStore(db.Pool)
		b.StartTimer()
		for i := 0; i < len(recs); i += 500 {
			tx, err := db.Pool.Begin(ctx)
			require.NoError(b, err)
			_, err = store.Apply(ctx, tx, recs[i:min(i+500, len(recs))])
			require.NoError(b, err)
			require.NoError(b, tx.Commit(ctx))
		}
		total += len(recs)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(total), "go-cpu-µs/record")
	b.ReportMetric(float64(len(recs)), "records")
}

// cpuTime is the user and system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
