package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/hub"
	"socialhub/internal/pgcluster"
	"socialhub/internal/store"
)

func version() string { return hub.Version }

// commonFlags are the flags every command that reads the configuration takes.
type commonFlags struct {
	config  string
	dataDir string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "YAML configuration file (see socialhub.example.yaml); embedded defaults when empty")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory for the embedded broker, PostgreSQL and demo files (default \"data\")")
}

func (c *commonFlags) load(getenv func(string) string) (config.Config, error) {
	cfg, err := config.Load(c.config, getenv)
	if err != nil {
		return cfg, err
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	if err := cfg.Resolve(); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())}
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	demoFlag := fs.Bool("demo", false, "load the demo department list on first start")
	httpAddr := fs.String("http", "", "API listen address (default 127.0.0.1:8080; env SOCIALHUB_HTTP_ADDR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: socialhub run [flags]\n\nRuns the whole hub in one process: an embedded Kafka broker and PostgreSQL cluster\nunless kafka.brokers / DATABASE_URL are set, the connectors, the stages, the relay and the API.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.load(getenv)
	if err != nil {
		return err
	}
	if *demoFlag {
		cfg.Demo = true
	}
	if *httpAddr != "" {
		cfg.HTTP.Addr = *httpAddr
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	return hub.Run(ctx, cfg, hub.Options{
		Logger:        log,
		Registry:      kinds(),
		Getenv:        getenv,
		SingleProcess: true,
		Started: func(a hub.Addrs) {
			fmt.Fprintf(stdout, "socialhub %s\n  API:   http://%s/\n  Kafka: %v\n", version(), a.HTTP, a.Kafka)
		},
	})
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	roles := fs.String("roles", strings.Join(config.AllRoles, ","), "comma-separated roles this process runs: "+strings.Join(config.AllRoles, ", "))
	httpAddr := fs.String("http", "", "HTTP listen address: the API, or with no api role only /healthz, /readyz and /metrics (env SOCIALHUB_HTTP_ADDR)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: socialhub serve --roles=connectors,validate,resolve,relay,api [flags]\n\n"+
			"Runs some or all of the hub's roles against an external Kafka cluster (kafka.brokers or\n"+
			"SOCIALHUB_KAFKA_BROKERS, with kafka.tls / kafka.sasl) and an external PostgreSQL (DATABASE_URL).\n"+
			"Run any number of processes per role: Kafka consumer groups share the partitions, and the\n"+
			"connectors run in the one process that holds their lease in PostgreSQL.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.load(getenv)
	if err != nil {
		return err
	}
	cfg.Roles = nil
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			cfg.Roles = append(cfg.Roles, r)
		}
	}
	if *httpAddr != "" {
		cfg.HTTP.Addr = *httpAddr
	}
	if cfg.DatabaseURL == "" || len(cfg.Kafka.Brokers) == 0 {
		return usageError{"serve runs against external services: set DATABASE_URL and SOCIALHUB_KAFKA_BROKERS (or database_url and kafka.brokers); for everything in one process on embedded defaults use 'socialhub run'"}
	}
	if len(cfg.Roles) == 0 {
		return usageError{"--roles names no role"}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	return hub.Run(ctx, cfg, hub.Options{
		Logger:   log,
		Registry: kinds(),
		Getenv:   getenv,
		Started: func(a hub.Addrs) {
			fmt.Fprintf(stdout, "socialhub %s serving %s\n  HTTP:  http://%s/\n  Kafka: %v\n", version(), strings.Join(cfg.Roles, ","), a.HTTP, a.Kafka)
		},
	})
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.load(getenv)
	if err != nil {
		return err
	}
	url, stop, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	pool, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool, hub.Migrations()...); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// database returns the configured database, or starts the embedded cluster for the command.
func database(ctx context.Context, cfg config.Config) (string, func(), error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, func() {}, nil
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: cfg.DataDir + "/postgres", Database: "socialhub"})
	if err != nil {
		return "", nil, err
	}
	if cl.Reused() {
		// The running hub's cluster: borrowed, not ours to stop.
		return cl.URL(), func() {}, nil
	}
	return cl.URL(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cl.Stop(sctx)
	}, nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "generate" {
		return cmdDemoGenerate(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("socialhub demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write (default: standard output)")
	seed := fs.Int64("seed", 1, "seed: the same seed gives the same file")
	rows := fs.Int("rows", 240, "number of valid rows")
	broken := fs.Int("broken", 6, "number of deliberately broken rows")
	cp1251 := fs.Bool("windows-1251", false, "write Windows-1251 instead of UTF-8")
	if err := parse(fs, args); err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("error creating %s: %w", *out, err)
		}
		defer f.Close()
		w = f
	}
	if *rows < 1 || *broken < 0 {
		return usageError{"-rows must be at least 1 and -broken at least 0"}
	}
	opts := demo.Options{Seed: *seed, Rows: *rows, Broken: *broken}
	if *broken == 0 {
		opts.Broken = -1 // the generator reads 0 as its default; the flag means none
	}
	write := demo.WriteDepartmentCSV
	if *cp1251 {
		write = demo.WriteDepartmentCSVWindows1251
	}
	man, err := write(w, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d valid and %d broken rows\n", len(man.Valid), len(man.Broken))
	return nil
}
