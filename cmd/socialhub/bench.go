package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/clients"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/hub"
	"socialhub/internal/lookup"
	"socialhub/internal/pgcluster"
	"socialhub/internal/pseudonym"
	"socialhub/internal/store"
)

// benchOptions are the sizes and knobs of one `socialhub bench` run.
type benchOptions struct {
	residents   int
	listings    int
	overlap     float64
	partitions  int
	batch       int
	lookupFor   time.Duration
	lookupConc  int
	fanout      int
	out         string
	cpuProfile  string
	dir         string
	keep        bool
	seed        int64
	maxWait     time.Duration
	logLevel    string
	listingSrcs int
	statements  int
}

// BenchReport is what `socialhub bench` prints and writes as JSON.
type BenchReport struct {
	Machine   BenchMachine `json:"machine"`
	Residents int          `json:"residents"`
	Listings  int          `json:"listings"`
	// Overlap is the share of listing records that describe a service another source lists too.
	Overlap float64 `json:"overlap"`
	Records int     `json:"records"` // residents + listings: what the connectors read

	StartupSeconds float64      `json:"startup_seconds"` // migrations, topics, API: before any record flows
	Stages         []BenchStage `json:"stages"`
	// EndToEnd is records over the time from the first connector run to zero lag at resolve.
	EndToEndSeconds      float64 `json:"end_to_end_seconds"`
	EndToEndRecordsPerS  float64 `json:"end_to_end_records_per_s"`
	TimeToZeroLagSeconds float64 `json:"time_to_zero_lag_seconds"`
	PeakRSSBytes         int64   `json:"peak_rss_bytes"`
	// CPU is where the machine's time went during the ingest: the numbers that stay comparable
	// when other work shares the machine and the rates do not.
	CPU BenchCPU `json:"cpu"`

	Baseline BenchBaseline `json:"baseline"`
	// RatioToCopy is the hub's end-to-end rate over the COPY rate of the same rows (goal 0.35).
	RatioToCopy float64 `json:"ratio_to_copy"`

	Lookup BenchLookup `json:"lookup"`
	FanOut BenchFanOut `json:"fanout"`

	Catalog map[string]int64 `json:"catalog"` // canonical entities by type after the run

	// Statements are the hub's costliest SQL statements during the ingest (--pg-statements).
	Statements []BenchStatement `json:"statements,omitempty"`
}

// BenchStatement is one normalized SQL statement's share of the ingest, from pg_stat_statements.
type BenchStatement struct {
	Query       string  `json:"query"`
	Calls       int64   `json:"calls"`
	Rows        int64   `json:"rows"`
	TotalMs     float64 `json:"total_ms"`
	MeanMs      float64 `json:"mean_ms"`
	SharePct    float64 `json:"share_pct"` // of all statements' execution time
	PerRecordUs float64 `json:"us_per_record"`
}

// BenchMachine says where the numbers were measured.
type BenchMachine struct {
	CPUs      int    `json:"cpus"`
	MemBytes  int64  `json:"mem_bytes"`
	GoVersion string `json:"go_version"`
	Version   string `json:"version"`
}

// BenchStage is one stage's throughput, measured from its metrics while the whole hub runs.
type BenchStage struct {
	Name           string  `json:"name"`
	Records        int64   `json:"records"`
	Seconds        float64 `json:"seconds"` // first record seen to last record done
	RecordsPerS    float64 `json:"records_per_s"`
	FinishedAfterS float64 `json:"finished_after_s"` // since the connectors started
}

// BenchCPU is the CPU time the hub's process and the PostgreSQL server used during the ingest,
// in all and per record.
type BenchCPU struct {
	HubSeconds              float64 `json:"hub_seconds"`
	PostgresSeconds         float64 `json:"postgres_seconds"`
	HubMicrosPerRecord      float64 `json:"hub_us_per_record"`
	PostgresMicrosPerRecord float64 `json:"postgres_us_per_record"`
	// MachineShare is the share of the machine's cores the two used over the ingest's wall time.
	MachineShare float64 `json:"machine_share"`
}

// BenchBaseline is the physical floor: the same rows loaded with COPY.
type BenchBaseline struct {
	Rows        int     `json:"rows"`
	AvgRowBytes int     `json:"avg_row_bytes"`
	Seconds     float64 `json:"seconds"`
	RowsPerS    float64 `json:"rows_per_s"`
}

// BenchLookup is registry lookups through the API at a fixed concurrency.
type BenchLookup struct {
	Clients   int     `json:"clients"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"requests_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// BenchFanOut is the latency from an outbox commit to its arrival on an SSE stream and a webhook.
type BenchFanOut struct {
	Events       int     `json:"events"`
	SSEP50Ms     float64 `json:"sse_p50_ms"`
	SSEP99Ms     float64 `json:"sse_p99_ms"`
	WebhookP50Ms float64 `json:"webhook_p50_ms"`
	WebhookP99Ms float64 `json:"webhook_p99_ms"`
}

const benchRegistryTable = "registry_residents"

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	fs.IntVar(&o.residents, "residents", 1_000_000, "residents in the generated registry")
	fs.IntVar(&o.listings, "listings", 100_000, "service listings across the listing sources")
	fs.Float64Var(&o.overlap, "overlap", 0.3, "share of listings that repeat another source's service")
	fs.IntVar(&o.listingSrcs, "listing-sources", 3, "number of listing sources")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions per topic")
	fs.IntVar(&o.batch, "batch", 0, "pipeline batch size (default: the configuration's)")
	fs.DurationVar(&o.lookupFor, "lookup-duration", 10*time.Second, "how long to run lookups")
	fs.IntVar(&o.lookupConc, "lookup-clients", 64, "concurrent lookup clients")
	fs.IntVar(&o.fanout, "fanout-events", 500, "change events committed to measure fan-out latency")
	fs.StringVar(&o.out, "out", "", "write the report as JSON to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the ingest to this file (read it with go tool pprof -top)")
	fs.StringVar(&o.dir, "dir", "", "working directory for PostgreSQL, the broker and files (default: a temporary one, removed after)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory")
	fs.Int64Var(&o.seed, "seed", 1, "generator seed")
	fs.DurationVar(&o.maxWait, "timeout", 2*time.Hour, "give up when the ingest has not finished after this long")
	fs.StringVar(&o.logLevel, "log-level", "warn", "hub log level")
	fs.IntVar(&o.statements, "pg-statements", 12, "print the hub's N costliest SQL statements of the ingest (pg_stat_statements; 0: off)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: socialhub bench [flags]\n\nRuns the whole hub (embedded broker, a throwaway PostgreSQL) on generated residents and\nlistings, measures every stage, lookups and change fan-out, and COPY of the same rows.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.residents < 0 || o.listings < 1 || o.overlap < 0 || o.overlap >= 1 || o.listingSrcs < 1 || o.lookupConc < 1 {
		return usageError{"bench: sizes must be positive and overlap in [0, 1)"}
	}
	rep, err := runBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	printBench(stdout, rep)
	if o.out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("error writing %s: %w", o.out, err)
		}
	}
	return nil
}

func runBench(ctx context.Context, o benchOptions, progress io.Writer) (rep BenchReport, err error) {
	say := func(format string, a ...any) { fmt.Fprintf(progress, "bench: "+format+"\n", a...) }
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "socialhub-bench-"); err != nil {
			return rep, err
		}
		// PostgreSQL runs as an unprivileged user when we are root: it must reach the directory.
		_ = os.Chmod(dir, 0o755)
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	rep.Machine = BenchMachine{CPUs: runtime.NumCPU(), MemBytes: memTotal(), GoVersion: runtime.Version(), Version: hub.Version}
	rep.Residents, rep.Listings, rep.Overlap = o.residents, o.listings, o.overlap

	say("starting PostgreSQL in %s", dir)
	popts := pgcluster.Options{DataDir: filepath.Join(dir, "postgres"), Database: "socialhub"}
	if o.statements > 0 {
		popts.Settings = map[string]string{"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "top"}
	}
	cluster, err := pgcluster.Start(ctx, popts)
	if err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = cluster.Stop(sctx)
	}()

	// The sources' data: a residents' registry table and listing CSVs.
	say("generating %d residents and %d listings", o.residents, o.listings)
	people := demo.Residents(o.residents, o.seed)
	regURL, err := createDatabase(ctx, cluster, "bench_registry")
	if err != nil {
		return rep, err
	}
	if err := loadRegistry(ctx, regURL, people); err != nil {
		return rep, err
	}
	listingFiles, listingRows, err := writeListings(filepath.Join(dir, "listings"), o)
	if err != nil {
		return rep, err
	}
	rep.Records = o.residents + o.listings

	// The physical baseline first, alone on the machine: COPY of the same rows.
	say("baseline: COPY of %d rows", rep.Records)
	baseURL, err := createDatabase(ctx, cluster, "bench_baseline")
	if err != nil {
		return rep, err
	}
	if rep.Baseline, err = copyBaseline(ctx, baseURL, people, listingRows); err != nil {
		return rep, err
	}

	// The hub, on the throwaway cluster and its own embedded broker.
	key := fmt.Sprintf("%064x", o.seed)
	hubGetenv := func(k string) string {
		if k == pseudonym.EnvKey {
			return key
		}
		return ""
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "hub")
	cfg.DatabaseURL = cluster.URL()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Partitions = o.partitions
	if o.batch > 0 {
		cfg.Pipeline.BatchSize = o.batch
	}
	cfg.Sources = nil
	for i, path := range listingFiles {
		s, err := hub.CSVSource(fmt.Sprintf("bench-listings-%d", i+1), path, "@every 24h")
		if err != nil {
			return rep, err
		}
		cfg.Sources = append(cfg.Sources, s)
	}
	if o.residents > 0 {
		s, err := residentsSource(regURL)
		if err != nil {
			return rep, err
		}
		cfg.Sources = append(cfg.Sources, s)
	}
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("bench configuration: %w", err)
	}

	var lv slog.Level
	_ = lv.UnmarshalText([]byte(o.logLevel))
	log := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: lv}))
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return rep, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return rep, err
		}
		// Stopped once the ingest is done, so lookups and fan-out don't blur where ingest time goes.
		defer pprof.StopCPUProfile()
	}
	hubCtx, stopHub := context.WithCancel(ctx)
	started := make(chan hub.Addrs, 1)
	done := make(chan error, 1)
	t0 := time.Now()
	say("starting the hub")
	go func() {
		done <- hub.Run(hubCtx, cfg, hub.Options{
			Logger: log, Registry: kinds(), SingleProcess: true, Getenv: hubGetenv,
			Started: func(a hub.Addrs) { started <- a },
		})
	}()
	defer func() {
		stopHub()
		if herr := <-done; herr != nil && err == nil && !errors.Is(herr, context.Canceled) {
			err = fmt.Errorf("hub: %w", herr)
		}
	}()
	var addrs hub.Addrs
	select {
	case addrs = <-started:
	case herr := <-done:
		done <- herr
		return rep, fmt.Errorf("hub stopped before serving: %w", herr)
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	ingestStart := time.Now()
	rep.StartupSeconds = ingestStart.Sub(t0).Seconds()
	if o.statements > 0 {
		if err := resetStatements(ctx, cluster.URL()); err != nil {
			return rep, err
		}
	}
	hubCPU0, pgCPU0 := processCPU(), clusterCPU(cluster)
	base := "http://" + addrs.HTTP

	say("ingesting (startup took %.1fs)", rep.StartupSeconds)
	stages, err := watchIngest(ctx, base, rep.Records, o.maxWait, say)
	if err != nil {
		return rep, err
	}
	rep.Stages = stages
	rep.CPU = cpuUsed(processCPU()-hubCPU0, clusterCPU(cluster)-pgCPU0, time.Since(ingestStart), rep.Records)
	for _, s := range stages {
		// Lag is zero once the last stage to finish is done: the relay finishes early when only
		// residents flow (they publish no changes), so it is the latest stage, not the last listed.
		rep.TimeToZeroLagSeconds = max(rep.TimeToZeroLagSeconds, s.FinishedAfterS)
		if s.Name == "resolve" {
			rep.EndToEndSeconds = s.FinishedAfterS
		}
	}
	if rep.EndToEndSeconds > 0 {
		rep.EndToEndRecordsPerS = float64(rep.Records) / rep.EndToEndSeconds
	}
	if rep.Baseline.RowsPerS > 0 {
		rep.RatioToCopy = rep.EndToEndRecordsPerS / rep.Baseline.RowsPerS
	}
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if o.statements > 0 {
		if rep.Statements, err = topStatements(ctx, cluster.URL(), o.statements, rep.Records); err != nil {
			return rep, err
		}
	}

	pool, err := store.Open(ctx, addrs.DatabaseURL, store.PoolOptions{MaxConns: 8})
	if err != nil {
		return rep, err
	}
	defer pool.Close()
	if rep.Catalog, err = catalog.NewStore(pool).Count(ctx); err != nil {
		return rep, err
	}

	if o.residents > 0 && o.lookupFor > 0 {
		say("lookups: %d clients for %s", o.lookupConc, o.lookupFor)
		cs := clients.NewStore(pool)
		_, token, err := cs.Create(ctx, clients.NewClient{
			Name: "bench", Kind: clients.KindDepartment, Purposes: []string{"bench"},
			Scopes: []string{clients.ScopeLookupPensionStatus, clients.ScopeLookupRegisteredAddress},
			Rate:   1e9, Burst: 1 << 30,
		})
		if err != nil {
			return rep, err
		}
		if rep.Lookup, err = benchLookups(ctx, base, token, people, o); err != nil {
			return rep, err
		}
	}
	if o.fanout > 0 {
		say("fan-out: %d change events", o.fanout)
		if rep.FanOut, err = benchFanOut(ctx, base, pool, o.fanout); err != nil {
			return rep, err
		}
	}
	rep.PeakRSSBytes = peakRSS()
	return rep, nil
}

// createDatabase creates a database on the cluster and returns its URL.
func createDatabase(ctx context.Context, cluster *pgcluster.Cluster, name string) (string, error) {
	conn, err := pgx.Connect(ctx, cluster.URL())
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("error creating database %s: %w", name, err)
	}
	return strings.Replace(cluster.URL(), "/socialhub?", "/"+name+"?", 1), nil
}

func loadRegistry(ctx context.Context, url string, people []demo.Resident) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := demo.CreateResidentsTable(ctx, conn, benchRegistryTable); err != nil {
		return err
	}
	return demo.CopyResidents(ctx, conn, benchRegistryTable, people)
}

func residentsSource(dsn string) (config.Source, error) {
	var s config.Source
	doc := fmt.Sprintf("name: bench-residents\nkind: residents\nschedule: \"@every 24h\"\noptions:\n  mode: table\n  dsn: %q\n  table: %s\n", dsn, benchRegistryTable)
	if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
		return s, err
	}
	return s, nil
}

// writeListings writes the listing sources as department-style CSVs: the unique services are
// spread over the sources, and a share (overlap) of each source's rows repeats a service another
// source lists, under that source's own id and with its phone written its own way. The services
// belong to institutions generated in proportion to the rows (demo.InstitutionsFor), as a city's
// would: without them 100 000 rows are a few hundred services listed over and over, which measures
// the merging of one giant cluster rather than a catalog.
func writeListings(dir string, o benchOptions) ([]string, [][]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	unique := max(1, int(float64(o.listings)*(1-o.overlap)))
	var buf bytes.Buffer
	if _, err := demo.WriteDepartmentCSV(&buf, demo.Options{Seed: o.seed, Rows: unique, Broken: -1, Institutions: demo.InstitutionsFor(unique)}); err != nil {
		return nil, nil, err
	}
	r := csv.NewReader(&buf)
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		return nil, nil, err
	}
	rows = rows[1:]
	n := o.listingSrcs
	perSource := make([][][]string, n)
	for i, row := range rows {
		perSource[i%n] = append(perSource[i%n], row)
	}
	g := rand.New(rand.NewPCG(uint64(o.seed), 0xbe4c))
	for k := range o.listings - unique {
		i := g.IntN(len(rows))
		to := (i%n + 1 + k%max(1, n-1)) % n
		dup := slices.Clone(rows[i])
		dup[0] = fmt.Sprintf("S%d-%d-%s", to+1, k, dup[0])
		if p := dup[15]; p != "" {
			dup[15] = strings.NewReplacer("+7 ", "8 ", "(", "", ")", "").Replace(p)
		}
		perSource[to] = append(perSource[to], dup)
	}
	var files []string
	var all [][]string
	for i, src := range perSource {
		path := filepath.Join(dir, fmt.Sprintf("listings-%d.csv", i+1))
		f, err := os.Create(path)
		if err != nil {
			return nil, nil, err
		}
		w := csv.NewWriter(bufio.NewWriter(f))
		w.Comma = ';'
		_ = w.Write(demo.DepartmentColumns)
		_ = w.WriteAll(src)
		if err := errors.Join(w.Error(), f.Close()); err != nil {
			return nil, nil, fmt.Errorf("error writing %s: %w", path, err)
		}
		files = append(files, path)
		all = append(all, src...)
	}
	return files, all, nil
}

// copyBaseline loads the same residents and listing rows with COPY into tables of the same
// columns, with a primary key as the hub's tables have, and times it.
func copyBaseline(ctx context.Context, url string, people []demo.Resident, listings [][]string) (BenchBaseline, error) {
	var b BenchBaseline
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return b, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := demo.CreateResidentsTable(ctx, conn, "copy_residents"); err != nil {
		return b, err
	}
	cols := make([]string, len(demo.DepartmentColumns))
	defs := make([]string, len(cols))
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d", i)
		defs[i] = cols[i] + " text"
	}
	defs[0] += " PRIMARY KEY"
	if _, err := conn.Exec(ctx, "CREATE TABLE copy_listings ("+strings.Join(defs, ", ")+")"); err != nil {
		return b, err
	}
	width := 0
	for _, r := range listings {
		for _, c := range r {
			width += len(c) + 1
		}
	}
	var rb bytes.Buffer
	sample := people[:min(len(people), 1000)]
	if err := demo.EncodeResidents(&rb, demo.FormatCSV, sample); err != nil {
		return b, err
	}
	if len(sample) > 0 {
		width += rb.Len() * len(people) / len(sample)
	}
	start := time.Now()
	if err := demo.CopyResidents(ctx, conn, "copy_residents", people); err != nil {
		return b, err
	}
	src := pgx.CopyFromSlice(len(listings), func(i int) ([]any, error) {
		v := make([]any, len(listings[i]))
		for j, c := range listings[i] {
			v[j] = c
		}
		// Duplicated services carry their source's prefix, so ids stay unique as keys.
		v[0] = strconv.Itoa(i) + "/" + listings[i][0]
		return v, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"copy_listings"}, cols, src); err != nil {
		return b, err
	}
	b.Seconds = time.Since(start).Seconds()
	b.Rows = len(people) + len(listings)
	b.AvgRowBytes = width / max(1, b.Rows)
	b.RowsPerS = float64(b.Rows) / b.Seconds
	return b, nil
}

// watchIngest polls the hub's metrics until every record went through every stage and the
// resolve stage's lag is zero, and returns each stage's throughput.
func watchIngest(ctx context.Context, base string, records int, maxWait time.Duration, say func(string, ...any)) ([]BenchStage, error) {
	type stageWatch struct {
		name        string
		first, last time.Time
		count       float64
		outcomes    []string
	}
	stages := []*stageWatch{
		{name: "connector", outcomes: []string{"produced", "rejected"}},
		{name: "validate", outcomes: []string{"valid", "rejected"}},
		{name: "resolve", outcomes: []string{"applied", "unchanged", "rejected"}},
		{name: "relay", outcomes: []string{"published"}},
	}
	start := time.Now()
	deadline := start.Add(maxWait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastReport := start
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		m, err := scrapeMetrics(ctx, base)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		for _, s := range stages {
			var c float64
			for _, oc := range s.outcomes {
				c += m[`socialhub_records_out_total{outcome="`+oc+`",stage="`+s.name+`"}`]
			}
			if c > 0 && s.first.IsZero() {
				s.first = now
			}
			if c != s.count {
				s.count, s.last = c, now
			}
		}
		conn, val, res := stages[0].count, stages[1].count, stages[2].count
		validOut := m[`socialhub_records_out_total{outcome="valid",stage="validate"}`]
		var lag float64
		for k, v := range m {
			if strings.HasPrefix(k, "socialhub_consumer_lag{") {
				lag += v
			}
		}
		backlog := m["socialhub_outbox_backlog"]
		if now.Sub(lastReport) > 5*time.Second {
			lastReport = now
			say("%.0fs: connector %.0f, validate %.0f, resolve %.0f, relay %.0f, lag %.0f", now.Sub(start).Seconds(), conn, val, res, stages[3].count, lag)
		}
		if conn >= float64(records) && val >= conn && res >= validOut && lag == 0 && backlog == 0 && now.Sub(stages[3].last) > time.Second {
			break
		}
		if now.After(deadline) {
			var counts []string
			for k, v := range m {
				if strings.HasPrefix(k, "socialhub_records_") || strings.HasPrefix(k, "socialhub_connector_runs") {
					counts = append(counts, fmt.Sprintf("%s %.0f", k, v))
				}
			}
			slices.Sort(counts)
			return nil, fmt.Errorf("bench: ingest not finished after %s (connector %.0f of %d, validate %.0f, resolve %.0f, lag %.0f, outbox %.0f):\n%s",
				maxWait, conn, records, val, res, lag, backlog, strings.Join(counts, "\n"))
		}
	}
	var out []BenchStage
	for _, s := range stages {
		st := BenchStage{Name: s.name, Records: int64(s.count)}
		if !s.first.IsZero() {
			// A stage's rate is over its own active window, first finished batch to last: the
			// stages run at once, so a later stage's window starts when records reach it.
			st.Seconds = s.last.Sub(s.first).Seconds()
			st.FinishedAfterS = s.last.Sub(start).Seconds()
			if st.Seconds > 0 {
				st.RecordsPerS = float64(st.Records) / st.Seconds
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// scrapeMetrics reads the hub's Prometheus text exposition into "name{labels}" → value.
func scrapeMetrics(ctx context.Context, base string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("error reading the hub's metrics: %w", err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "socialhub_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] += v
		if j := strings.IndexByte(line, '{'); j > 0 && j < i {
			m[line[:j]] += v
		}
	}
	return m, sc.Err()
}

// benchLookups runs pension-status lookups of random residents from o.lookupConc clients.
func benchLookups(ctx context.Context, base, token string, people []demo.Resident, o benchOptions) (BenchLookup, error) {
	res := BenchLookup{Clients: o.lookupConc}
	var reqs, errs atomic.Int64
	lats := make([][]time.Duration, o.lookupConc)
	tr := &http.Transport{MaxIdleConns: o.lookupConc * 2, MaxIdleConnsPerHost: o.lookupConc * 2}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lctx, cancel := context.WithTimeout(ctx, o.lookupFor)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	var firstErr atomic.Value
	for c := range o.lookupConc {
		wg.Go(func() {
			g := rand.New(rand.NewPCG(uint64(c), 7))
			for lctx.Err() == nil {
				p := people[g.IntN(len(people))]
				body, _ := json.Marshal(lookup.Request{
					Subject: lookup.Subject{NationalID: p.SNILS},
					Claims:  []lookup.Claim{{Type: lookup.ClaimPensionStatus}},
					Purpose: "bench", CaseID: "bench-" + strconv.Itoa(c),
				})
				req, _ := http.NewRequestWithContext(lctx, http.MethodPost, base+"/v1/lookups", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				t := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(t)
				reqs.Add(1)
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, b))
					continue
				}
				lats[c] = append(lats[c], d)
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Requests, res.Errors = reqs.Load(), errs.Load()
	res.PerSecond = float64(res.Requests) / res.Seconds
	all := slices.Concat(lats...)
	res.P50Ms, res.P99Ms = ms(quantile(all, 50)), ms(quantile(all, 99))
	if res.Errors > res.Requests/100 {
		return res, fmt.Errorf("bench: %d of %d lookups failed, first: %v", res.Errors, res.Requests, firstErr.Load())
	}
	return res, nil
}

// benchFanOut commits n change events through the hub's outbox, a few per transaction at a steady
// pace, and measures how long each takes to reach an SSE stream and a webhook receiver.
func benchFanOut(ctx context.Context, base string, pool *pgxpool.Pool, n int) (BenchFanOut, error) {
	res := BenchFanOut{Events: n}
	commitAt := sync.Map{} // entity id → time.Time
	lat := func(id string, at time.Time) (time.Duration, bool) {
		v, ok := commitAt.Load(id)
		if !ok {
			return 0, false
		}
		return max(0, at.Sub(v.(time.Time))), true
	}
	// Webhook receiver: a plain local server that answers 204 and notes the arrival.
	var hookMu sync.Mutex
	var hookLat []time.Duration
	hookDone := make(chan struct{})
	hookSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Data changes.FeedEvent `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		at := time.Now()
		w.WriteHeader(http.StatusNoContent)
		if d, ok := lat(p.Data.ID, at); ok {
			hookMu.Lock()
			hookLat = append(hookLat, d)
			if len(hookLat) == n {
				close(hookDone)
			}
			hookMu.Unlock()
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	go func() { _ = hookSrv.Serve(ln) }()
	defer hookSrv.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, _, err := changes.NewSubscriptions(pool).Create(sctx, "bench", "http://"+ln.Addr().String()+"/hook", changes.Filter{}); err != nil {
		return res, err
	}

	// SSE stream from now on.
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/v1/changes/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return res, fmt.Errorf("bench: SSE stream: %d %s", resp.StatusCode, b)
	}
	sseDone := make(chan []time.Duration, 1)
	go func() {
		var got []time.Duration
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data:")
			if !ok {
				continue
			}
			at := time.Now()
			var e changes.FeedEvent
			if json.Unmarshal([]byte(strings.TrimSpace(data)), &e) != nil {
				continue
			}
			if d, ok := lat(e.ID, at); ok {
				got = append(got, d)
				if len(got) == n {
					break
				}
			}
		}
		sseDone <- got
	}()
	time.Sleep(200 * time.Millisecond)

	outbox := changes.NewOutbox(pool)
	const perTx = 5
	for i := 0; i < n; i += perTx {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return res, err
		}
		var chs []catalog.Change
		ids := []string{}
		for j := i; j < min(n, i+perTx); j++ {
			id := fmt.Sprintf("bench-fanout-%06d", j)
			ids = append(ids, id)
			doc, _ := json.Marshal(map[string]any{"id": id, "name": "Комната прохлады — проверка рассылки"})
			chs = append(chs, catalog.Change{EntityType: catalog.EntityService, EntityID: id, Op: catalog.ChangeCreated, Version: 1, Doc: doc})
		}
		if err := outbox.Append(ctx, tx, chs); err != nil {
			_ = tx.Rollback(ctx)
			return res, err
		}
		if err := tx.Commit(ctx); err != nil {
			return res, err
		}
		now := time.Now()
		for _, id := range ids {
			commitAt.Store(id, now)
		}
		time.Sleep(10 * time.Millisecond)
	}
	timeout := time.After(2 * time.Minute)
	select {
	case got := <-sseDone:
		if len(got) < n {
			return res, fmt.Errorf("bench: SSE stream ended after %d of %d events", len(got), n)
		}
		res.SSEP50Ms, res.SSEP99Ms = ms(quantile(got, 50)), ms(quantile(got, 99))
	case <-timeout:
		return res, errors.New("bench: SSE events did not all arrive within 2 minutes")
	}
	select {
	case <-hookDone:
	case <-timeout:
		return res, errors.New("bench: webhooks did not all arrive within 2 minutes")
	}
	hookMu.Lock()
	res.WebhookP50Ms, res.WebhookP99Ms = ms(quantile(hookLat, 50)), ms(quantile(hookLat, 99))
	hookMu.Unlock()
	return res, nil
}

func printBench(w io.Writer, r BenchReport) {
	fmt.Fprintf(w, "machine: %d CPUs, %.1f GiB, %s\n", r.Machine.CPUs, float64(r.Machine.MemBytes)/(1<<30), r.Machine.GoVersion)
	fmt.Fprintf(w, "records: %d (%d residents, %d listings, %.0f%% overlap)\n", r.Records, r.Residents, r.Listings, r.Overlap*100)
	fmt.Fprintf(w, "startup: %.1fs\n", r.StartupSeconds)
	for _, s := range r.Stages {
		fmt.Fprintf(w, "  %-10s %9d records  %8.0f records/s  done after %.1fs\n", s.Name, s.Records, s.RecordsPerS, s.FinishedAfterS)
	}
	fmt.Fprintf(w, "end to end: %.0f records/s (%.1fs); lag zero after %.1fs\n", r.EndToEndRecordsPerS, r.EndToEndSeconds, r.TimeToZeroLagSeconds)
	fmt.Fprintf(w, "COPY baseline: %d rows of ~%d B in %.1fs = %.0f rows/s\n", r.Baseline.Rows, r.Baseline.AvgRowBytes, r.Baseline.Seconds, r.Baseline.RowsPerS)
	fmt.Fprintf(w, "hub / COPY: %.1f%% (goal 35%%)\n", r.RatioToCopy*100)
	fmt.Fprintf(w, "CPU during the ingest: hub %.1fs (%.0f µs/record), PostgreSQL %.1fs (%.0f µs/record); %.0f%% of the machine\n",
		r.CPU.HubSeconds, r.CPU.HubMicrosPerRecord, r.CPU.PostgresSeconds, r.CPU.PostgresMicrosPerRecord, r.CPU.MachineShare*100)
	fmt.Fprintf(w, "peak RSS: %.0f MiB\n", float64(r.PeakRSSBytes)/(1<<20))
	if r.Lookup.Requests > 0 {
		fmt.Fprintf(w, "lookups: %d clients, %.0f req/s, p50 %.1f ms, p99 %.1f ms (%d requests, %d errors)\n",
			r.Lookup.Clients, r.Lookup.PerSecond, r.Lookup.P50Ms, r.Lookup.P99Ms, r.Lookup.Requests, r.Lookup.Errors)
	}
	if r.FanOut.Events > 0 {
		fmt.Fprintf(w, "fan-out (commit → receiver), %d events: SSE p50 %.1f ms, p99 %.1f ms; webhook p50 %.1f ms, p99 %.1f ms\n",
			r.FanOut.Events, r.FanOut.SSEP50Ms, r.FanOut.SSEP99Ms, r.FanOut.WebhookP50Ms, r.FanOut.WebhookP99Ms)
	}
	if len(r.Statements) > 0 {
		fmt.Fprintf(w, "costliest SQL statements of the ingest (pg_stat_statements):\n")
		for _, st := range r.Statements {
			q := st.Query
			if len(q) > 110 {
				q = q[:110] + "…"
			}
			fmt.Fprintf(w, "  %5.1f%% %7.0f ms %6.1f µs/record %7d calls  %s\n", st.SharePct, st.TotalMs, st.PerRecordUs, st.Calls, q)
		}
	}
	keys := make([]string, 0, len(r.Catalog))
	for k := range r.Catalog {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Catalog[k]))
	}
	fmt.Fprintf(w, "catalog: %s\n", strings.Join(parts, ", "))
}

func quantile(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*q/100)]
}

// resetStatements clears pg_stat_statements so what it holds after the ingest is the ingest's.
func resetStatements(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("error creating pg_stat_statements: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		return fmt.Errorf("error resetting pg_stat_statements: %w", err)
	}
	return nil
}

// topStatements returns the n statements of the hub's database that took the most execution time.
func topStatements(ctx context.Context, url string, n, records int) ([]BenchStatement, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `
		SELECT regexp_replace(query, '\s+', ' ', 'g'), calls, rows, total_exec_time,
			100 * total_exec_time / nullif(sum(total_exec_time) OVER (), 0)
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = current_database()
		ORDER BY total_exec_time DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("error reading pg_stat_statements: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (BenchStatement, error) {
		var st BenchStatement
		var share *float64
		if err := row.Scan(&st.Query, &st.Calls, &st.Rows, &st.TotalMs, &share); err != nil {
			return st, err
		}
		if share != nil {
			st.SharePct = *share
		}
		if st.Calls > 0 {
			st.MeanMs = st.TotalMs / float64(st.Calls)
		}
		st.PerRecordUs = st.TotalMs * 1000 / float64(max(records, 1))
		return st, nil
	})
}

// processCPU is the CPU time this process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clusterCPU is the CPU time the PostgreSQL server has used; 0 where it cannot be read.
func clusterCPU(c *pgcluster.Cluster) time.Duration {
	d, err := c.CPUTime()
	if err != nil {
		return 0
	}
	return d
}

func cpuUsed(hub, pg, wall time.Duration, records int) BenchCPU {
	c := BenchCPU{HubSeconds: hub.Seconds(), PostgresSeconds: pg.Seconds()}
	if records > 0 {
		c.HubMicrosPerRecord = float64(hub.Microseconds()) / float64(records)
		c.PostgresMicrosPerRecord = float64(pg.Microseconds()) / float64(records)
	}
	if wall > 0 {
		c.MachineShare = (hub + pg).Seconds() / wall.Seconds() / float64(runtime.NumCPU())
	}
	return c
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func peakRSS() int64 { return procStatus("/proc/self/status", "VmHWM:") }

func memTotal() int64 { return procStatus("/proc/meminfo", "MemTotal:") }

func procStatus(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
