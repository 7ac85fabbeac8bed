package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/connectors"
	"socialhub/internal/api"
	"socialhub/internal/attest"
	"socialhub/internal/audit"
	"socialhub/internal/broker"
	"socialhub/internal/cases"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/clients"
	"socialhub/internal/config"
	"socialhub/internal/dlq"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/jsonhttp"
	"socialhub/internal/listings"
	"socialhub/internal/lookup"
	"socialhub/internal/match"
	"socialhub/internal/metrics"
	"socialhub/internal/pgcluster"
	"socialhub/internal/pseudonym"
	"socialhub/internal/quality"
	"socialhub/internal/resolve"
	"socialhub/internal/review"
	"socialhub/internal/schedule"
	"socialhub/internal/store"
	"socialhub/internal/validate"
	"socialhub/internal/web"
	"socialhub/schemas"
)

// Version is the hub's version, set at build time with -ldflags "-X socialhub/internal/hub.Version=...".
var Version = "dev"

// Migrations lists every package's tables, in dependency order.
func Migrations() []store.MigrationSet {
	return []store.MigrationSet{
		connectors.Migrations(), catalog.Migrations(), quality.Migrations(), eligibility.Migrations(),
		audit.Migrations(), clients.Migrations(), attest.Migrations(),
		changes.Migrations(), resolve.Migrations(), dlq.Migrations(), listings.Migrations(), cases.Migrations(), web.Migrations(),
	}
}

// Options are what the process adds to the configuration.
type Options struct {
	Logger   *slog.Logger
	Registry *connectors.Registry
	// SingleProcess says this process is the whole hub (`socialhub run`): it takes the connectors'
	// lease at once instead of waiting for a dead predecessor's to expire.
	SingleProcess bool
	// Routes, when set, is called once with every route the API serves (a test compares them with
	// the OpenAPI document).
	Routes func([]string)
	// Getenv reads the secrets sources name (os.Getenv when nil).
	Getenv func(string) string
	// Started, when set, is called once the API serves, with the addresses in use.
	Started func(Addrs)
}

// Addrs are the addresses the running hub uses.
type Addrs struct {
	HTTP        string
	Kafka       []string
	DatabaseURL string
}

// Run runs the hub until ctx ends, then shuts everything down in order and returns.
func Run(ctx context.Context, cfg config.Config, opts Options) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return fmt.Errorf("error creating data directory: %w", err)
		}
	}

	// PostgreSQL: the configured one, or our own cluster in the data directory.
	dbURL := cfg.DatabaseURL
	embeddedDB := dbURL == ""
	if embeddedDB {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(cfg.DataDir, "postgres"), Logger: log, Database: "socialhub"})
		if err != nil {
			return fmt.Errorf("error starting embedded PostgreSQL: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if serr := cluster.Stop(sctx); serr != nil {
				log.Error("error stopping embedded PostgreSQL", "error", serr)
			}
		}()
		dbURL = cluster.URL()
		log.Info("embedded PostgreSQL running", "port", cluster.Port(), "data_dir", filepath.Join(cfg.DataDir, "postgres"))
	}
	pool, err := store.Open(ctx, dbURL, store.PoolOptions{
		MaxConns: cfg.PoolMaxConns(), MinConns: cfg.Database.MinConns,
		MaxConnLifetime: cfg.Database.MaxConnLifetime, MaxConnIdleTime: cfg.Database.MaxConnIdleTime,
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool, Migrations()...); err != nil {
		return fmt.Errorf("error migrating database: %w", err)
	}

	// Kafka: the configured cluster, or the embedded broker.
	kcfg, err := KafkaConfig(cfg)
	if err != nil {
		return err
	}
	if len(kcfg.Brokers) == 0 {
		emb, err := broker.StartEmbedded(broker.EmbeddedOptions{
			DataDir: filepath.Join(cfg.DataDir, "kafka"), Port: cfg.Kafka.EmbeddedPort,
			MaxMessageBytes: cfg.Kafka.MaxMessageBytes, DefaultPartitions: cfg.Kafka.Partitions,
		})
		if err != nil {
			return err
		}
		defer emb.Close()
		kcfg.Brokers = emb.Addrs()
		log.Info("embedded Kafka broker listening", "addrs", emb.Addrs())
	}
	topics := event.NewTopics(cfg.Kafka.TopicPrefix)
	var specs []broker.TopicSpec
	for _, t := range topics.All() {
		specs = append(specs, broker.TopicSpec{Name: t, Partitions: cfg.Kafka.Partitions, Compacted: topics.Compacted(t)})
	}
	if err := broker.EnsureTopics(ctx, kcfg, specs...); err != nil {
		return err
	}

	// Listen before the sources are built: the demo feed's URL is the API's own address.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("error listening on %s: %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close()
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	sources := cfg.Sources
	var demoFeed http.Handler
	if cfg.Demo {
		d, err := setupDemo(ctx, cfg.DataDir, dbURL, ln.Addr().String(), getenv, log)
		if err != nil {
			return fmt.Errorf("error setting up the demo: %w", err)
		}
		for _, s := range d.sources {
			sources = withSource(sources, s)
		}
		getenv, demoFeed = d.getenv, d.feed
	}

	validator, err := schemas.NewValidator()
	if err != nil {
		return fmt.Errorf("error compiling schemas: %w", err)
	}
	m := metrics.New()
	writer := broker.NewWriter(kcfg)
	defer writer.Close()
	outbox := changes.NewOutbox(pool)
	registry := opts.Registry
	if registry == nil {
		return errors.New("hub: no connector registry")
	}
	for _, s := range sources {
		if _, ok := registry.Kind(s.Kind); !ok {
			return fmt.Errorf("source %q: %w %q", s.Name, connectors.ErrUnknownKind, s.Kind)
		}
		if s.Disabled {
			continue
		}
		// Building a source checks its options and secrets: a mistake stops the hub now, with the
		// source and field named, not at the first run.
		if _, err := registry.New(s, connectors.Deps{Logger: log, DataDir: cfg.DataDir, Getenv: getenv}); err != nil {
			return fmt.Errorf("source %q: %w", s.Name, err)
		}
	}

	checkpoints := connectors.NewCheckpoints(pool)
	if err := checkpoints.MarkAbandoned(ctx); err != nil {
		return err
	}
	runner := connectors.NewRunner(connectors.RunnerOptions{
		Registry: registry, Checkpoints: checkpoints, Producer: writer, Topics: topics,
		Metrics: m, Logger: log, Deps: connectors.Deps{Logger: log, DataDir: cfg.DataDir, Getenv: getenv},
		BatchSize: cfg.Pipeline.BatchSize, MaxMessageBytes: cfg.Kafka.MaxMessageBytes,
	})
	// Entity resolution trusts sources by kind: department systems over registries over NGOs'
	// own feeds over grant lists.
	matchCfg := match.DefaultConfig()
	kindOf := map[string]string{}
	for _, s := range sources {
		kindOf[s.Name] = s.Kind
	}
	matchCfg.Trust = match.TrustByKind(kindOf, nil)
	// NGOs' own listings (pushed as ngo-<client>, pulled as feed-<id>) rank as NGO self-published:
	// above grant lists, below departments and registries.
	ngoTrust := match.TrustByKind(map[string]string{"ngo": "httpjson"}, nil)["ngo"]
	matchCfg.TrustPrefixes = map[string]int{"ngo-": ngoTrust, "feed-": ngoTrust}
	cat := catalog.NewStore(pool, catalog.WithResolution(matchCfg))
	qual := quality.New(quality.Options{Pool: pool, Catalog: cat, Registerer: m.Registry, Logger: log})
	rules, err := loadRules(cfg.Eligibility.RulesFile)
	if err != nil {
		return err
	}
	elig := eligibility.NewStore(pool, eligibility.WithRules(rules))
	vstage := validate.New(validate.Options{
		Tally: qual,
		Kafka: kcfg, Topics: topics, Validator: validator, Producer: writer, Metrics: m, Logger: log,
		BatchSize: cfg.Pipeline.BatchSize, BatchWait: cfg.Pipeline.BatchWait, SessionTimeout: cfg.Pipeline.SessionTimeout,
	})
	caseRules, err := loadCaseRules(cfg.Cases.RulesFile)
	if err != nil {
		return err
	}
	pseudonyms, err := pseudonym.FromEnv(getenv)
	if err != nil {
		log.Warn("no pseudonym key: lookups and applications accept pseudonyms only, not national ids", "error", err)
		pseudonyms = nil
	}
	caseStore := cases.NewStore(cases.Options{Pool: pool, Rules: caseRules, Catalog: cat, Eligibility: elig,
		Pseudonymizer: pseudonyms, Outbox: outbox})
	// Two resolve stages, two consumer groups of valid: the catalog's entity resolution serializes
	// its transactions on blocking keys, and the residents' registry must not wait behind it.
	resolveStage := func(records resolve.Records) *resolve.Stage {
		return resolve.New(resolve.Options{
			Cases: caseStore, Records: records,
			Pool: pool, Catalog: cat, Eligibility: elig, Outbox: outbox, Kafka: kcfg, Topics: topics, Producer: writer,
			Metrics: m, Logger: log, BatchSize: cfg.Pipeline.BatchSize, BatchWait: cfg.Pipeline.BatchWait,
			SessionTimeout: cfg.Pipeline.SessionTimeout,
		})
	}
	rstage, residentStage := resolveStage(resolve.CatalogRecords), resolveStage(resolve.ResidentRecords)
	notifier := changes.NewNotifier()
	relay := changes.NewRelay(changes.RelayOptions{
		Notifier: notifier, Kafka: kcfg,
		Outbox: outbox, Producer: writer, Topics: topics, Metrics: m, Logger: log,
		Interval: cfg.Pipeline.RelayInterval, BatchSize: cfg.Pipeline.BatchSize,
	})
	sched := schedule.New(runner, checkpoints, sources, log)

	apiServer := api.New(api.Options{
		OpsOnly: !cfg.RoleSet()[config.RoleAPI],
		Catalog: cat, Logger: log, Gatherer: m.Registry, Registerer: m.Registry, Version: Version,
		Ready:   func(ctx context.Context) error { return ready(ctx, pool, kcfg, topics) },
		Sources: sourceStatus{sched: sched, checkpoints: checkpoints, quality: qual}, AdminToken: cfg.HTTP.AdminToken,
	})
	// Clients, scopes and the audit log guard what concerns residents.
	auditLog := audit.New(pool)
	guard := clients.NewGuard(clients.NewStore(pool), auditLog, log)
	masterKey, err := attest.MasterKey(getenv, cfg.DataDir)
	if err != nil {
		return err
	}
	keys, err := attest.New(pool, attest.Options{MasterKey: masterKey, Issuer: cfg.Attestation.Issuer, TTL: cfg.Attestation.TTL, RotateEvery: cfg.Attestation.RotateEvery})
	if err != nil {
		return err
	}
	lookup.New(lookup.Options{Eligibility: elig, Catalog: cat, Audit: auditLog, Guard: guard,
		Keys: keys, Pseudonyms: pseudonyms, Logger: log}).Mount(apiServer)
	// The services navigator and the contact-centre console, on the same API.
	webUI, err := web.New(web.Options{Stats: web.NewStats(pool, m.Registry), Guard: guard,
		TileURL: cfg.Web.TileURL, TileAttribution: cfg.Web.TileAttribution, Logger: log})
	if err != nil {
		return err
	}
	webUI.Mount(apiServer)
	cases.NewAPI(cases.APIOptions{Store: caseStore, Guard: guard, Audit: auditLog, Logger: log}).Mount(apiServer)
	// The change feed is public, as the catalog is; webhook subscriptions belong to API clients.
	feed := changes.NewFeed(pool)
	changes.NewFeedAPI(changes.FeedAPIOptions{Feed: feed, Notifier: notifier, Heartbeat: cfg.Changes.SSEHeartbeat, Logger: log}).Mount(apiServer)
	changes.NewSubscriptionAPI(changes.SubscriptionAPIOptions{Subscriptions: changes.NewSubscriptions(pool),
		Owner: clientOwner(clients.NewStore(pool)), RotationGrace: cfg.Webhooks.RotationGrace, Logger: log}).Mount(apiServer)
	deliverer := changes.NewDeliverer(changes.DelivererOptions{Pool: pool, Notifier: notifier, Metrics: m, Logger: log,
		Timeout: cfg.Webhooks.Timeout, Concurrency: cfg.Webhooks.Concurrency, RetryBase: cfg.Webhooks.RetryBase,
		RetryMax: cfg.Webhooks.RetryMax, PauseAfter: cfg.Webhooks.PauseAfter})
	validate.NewHandler(validate.NewChecker(validator)).Mount(apiServer)
	quality.NewHandler(qual).Mount(apiServer)
	dlqStore := dlq.NewStore(pool)
	indexer := dlq.NewIndexer(dlq.IndexerOptions{Store: dlqStore, Catalog: cat, Kafka: kcfg, Topics: topics,
		Metrics: m, Logger: log, BatchSize: cfg.Pipeline.BatchSize, BatchWait: cfg.Pipeline.BatchWait})
	replayer := dlq.NewReplayer(dlq.ReplayerOptions{Store: dlqStore, Producer: writer, Topics: topics, Logger: log,
		Rerun: func(name string) error { _, err := sched.RunNow(name, true); return err }})
	dlq.NewHandler(dlq.HandlerOptions{Store: dlqStore, Replayer: replayer, AdminToken: cfg.HTTP.AdminToken, Logger: log}).Mount(apiServer)
	// NGOs push their listings, register their feeds; admins bind them to their organizations.
	listingStore := listings.NewStore(pool)
	listings.New(listings.Options{Store: listingStore, Guard: guard, Clients: clients.NewStore(pool), Audit: auditLog,
		Checker: validate.NewChecker(validator), Producer: writer, Topics: topics, Catalog: cat, DLQ: dlqStore,
		Runs: checkpoints, Scheduler: sched, Logger: log,
		CheckSource: func(s config.Source) error {
			_, err := registry.New(s, connectors.Deps{Logger: log, DataDir: cfg.DataDir, Getenv: getenv})
			return err
		}}).Mount(apiServer)
	// The entity-resolution review queue, for operators.
	rv, err := review.New(review.Options{Pool: pool, Catalog: cat, Outbox: outbox, Authorize: operatorOnly(cfg.HTTP.AdminToken), Logger: log})
	if err != nil {
		return err
	}
	rv.Mount(apiServer)
	if demoFeed != nil {
		apiServer.Handle("GET "+DemoFeedPath+"/", http.StripPrefix(DemoFeedPath, demoFeed))
	}
	if opts.Routes != nil {
		opts.Routes(apiServer.Routes())
	}
	srv := &http.Server{Handler: apiServer, ReadHeaderTimeout: 10 * time.Second}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 64) // one slot for every part launched: a failing part never blocks
	launch := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(runCtx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	roles := cfg.RoleSet()
	if roles[config.RoleValidate] {
		launch("validate", vstage.Run)
	}
	if roles[config.RoleResolve] {
		launch("resolve", rstage.Run)
		launch("resolve-residents", residentStage.Run)
	}
	if roles[config.RoleRelay] {
		launch("relay", relay.Run)
	}
	if roles[config.RoleAPI] || roles[config.RoleWebhooks] {
		// Wakes SSE streams and webhook deliveries when another process's relay publishes.
		launch("changes-listener", changes.NewListener(pool, notifier, log).Run)
	}
	if roles[config.RoleWebhooks] {
		launch("webhooks", deliverer.Run)
	}
	if roles[config.RoleRelay] {
		launch("changes-pruner", changes.NewPruner(feed, cfg.Changes.Retention, cfg.Changes.PruneInterval, log).Run)
	}
	if roles[config.RoleAPI] {
		launch("dlq-index", indexer.Run)
		launch("cases-overdue", cases.NewWatcher(caseStore, m, time.Minute, log).Run)
		launch("quality", qual.Run)
		launch("maintenance", func(ctx context.Context) error { return maintain(ctx, keys, elig, log) })
	}
	if roles[config.RoleConnectors] {
		// Any number of processes may have the connectors role; the lease holder runs them.
		lease := connectors.NewLease(pool, "connectors", holderName(), cfg.Connectors.LeaseTTL, log)
		if embeddedDB || opts.SingleProcess {
			// This process is the whole hub: a lease left by a killed predecessor is stale.
			if err := lease.TakeOver(ctx); err != nil {
				return err
			}
		}
		launch("scheduler", func(ctx context.Context) error { return lease.Hold(ctx, sched.Run) })
		// Hands the NGOs' registered feeds to the scheduler, which runs them while it holds the lease.
		launch("feeds", listings.NewFeedSync(listingStore, sched, 30*time.Second, log).Run)
	}
	launch("http", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if roles[config.RoleConnectors] && (embeddedDB || opts.SingleProcess) {
		// This process took the connectors' lease over above: it is running once its scheduler
		// takes requests, so that running a source right after start is not refused with 503.
		select {
		case <-sched.Started():
		case <-runCtx.Done():
		}
	}
	addrs := Addrs{HTTP: ln.Addr().String(), Kafka: kcfg.Brokers, DatabaseURL: dbURL}
	log.Info("socialhub is running", "roles", cfg.RoleNames(), "api", "http://"+addrs.HTTP, "kafka", addrs.Kafka, "startup", time.Since(start).Round(time.Millisecond))
	if opts.Started != nil {
		opts.Started(addrs)
	}
	<-runCtx.Done()
	log.Info("shutting down")
	wg.Wait()
	close(errc)
	var errs []error
	for e := range errc {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// ready is the /readyz check: the database answers and the topics exist.
func ready(ctx context.Context, pool *pgxpool.Pool, kcfg broker.Config, topics event.Topics) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if _, err := broker.PartitionCount(ctx, kcfg, topics.Raw); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

func withSource(sources []config.Source, s config.Source) []config.Source {
	for _, x := range sources {
		if x.Name == s.Name {
			return sources
		}
	}
	return append(append([]config.Source(nil), sources...), s)
}

// loadRules reads the embedded eligibility rules and, when configured, the operator's file over them.
func loadRules(path string) (*eligibility.Rules, error) {
	if path == "" {
		return eligibility.DefaultRules()
	}
	def, err := fs.ReadFile(schemas.FS(), eligibility.RulesFile)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("eligibility.rules_file: %w", err)
	}
	return eligibility.LoadRules(eligibility.Source{Name: "schemas/" + eligibility.RulesFile, Data: def}, eligibility.Source{Name: path, Data: b})
}

// loadCaseRules reads the embedded routing, exclusion and deadline rules of applications and, when
// configured, the operator's file over them (where department clients are bound to their centres).
func loadCaseRules(path string) (*cases.Rules, error) {
	if path == "" {
		return cases.DefaultRules()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cases.rules_file: %w", err)
	}
	return cases.DefaultRules(cases.RulesSource{Name: path, Data: b})
}

// maintain keeps the signing keys rotated and computed eligibility current: at start, then hourly.
func maintain(ctx context.Context, keys *attest.Keys, elig *eligibility.Store, log *slog.Logger) error {
	for {
		if err := keys.Ensure(ctx); err != nil && ctx.Err() == nil {
			log.Error("error rotating attestation keys", "error", err)
		}
		if _, err := elig.Refresh(ctx, log); err != nil && ctx.Err() == nil {
			log.Error("error refreshing eligibility", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Hour):
		}
	}
}

// operatorOnly admits operator requests as the API's own operator endpoints do.
func operatorOnly(token string) func(*http.Request) bool {
	return func(r *http.Request) bool { return jsonhttp.OperatorAllowed(token, r) }
}

// clientOwner identifies the API client of a request by its bearer token.
func clientOwner(store *clients.Store) changes.Authorize {
	return func(r *http.Request) (string, bool) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return "", false
		}
		c, err := store.Authenticate(r.Context(), token)
		if err != nil {
			return "", false
		}
		return c.ID, true
	}
}

// holderName names this process in the connectors' lease: host and pid.
func holderName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// KafkaConfig builds the client settings of the configured brokers, with their TLS and SASL
// (socialhub doctor connects with the same).
func KafkaConfig(cfg config.Config) (broker.Config, error) {
	kcfg := broker.Config{Brokers: cfg.Kafka.Brokers, ClientID: "socialhub", BatchTimeout: 2 * time.Millisecond, MaxWait: 100 * time.Millisecond}
	t := cfg.Kafka.TLS
	if t.Enabled || t.CAFile != "" || t.CertFile != "" {
		tc, err := broker.NewTLS(broker.TLSOptions{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify})
		if err != nil {
			return kcfg, err
		}
		kcfg.TLS = tc
	}
	mech, err := broker.NewSASL(cfg.Kafka.SASL.Mechanism, cfg.Kafka.SASL.Username, cfg.Kafka.SASL.Password)
	if err != nil {
		return kcfg, err
	}
	kcfg.SASL = mech
	return kcfg, nil
}
