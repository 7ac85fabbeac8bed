// Package hubtest starts a whole hub in a test: `socialhub run --demo` on the test's own database
// and in-process Kafka cluster, with every demo source, stopped and cleaned up with the test.
package hubtest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/csv"
	"socialhub/connectors/hsds"
	"socialhub/connectors/ngogrants"
	"socialhub/connectors/residents"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
	"socialhub/internal/store"
)

// Hub is a running demo hub.
type Hub struct {
	Addrs hub.Addrs
	DB    *pgtest.DB
	Kafka *kafkatest.Cluster
	// DataDir is the hub's data directory (demo files, pseudonym key).
	DataDir string
	// Stop shuts the hub down and waits for a clean exit; the test's cleanup calls it too.
	Stop func()
}

// Options shape a demo hub; the zero value is `socialhub run --demo` with logs discarded.
type Options struct {
	// Logger receives the hub's logs (discarded when nil).
	Logger *slog.Logger
	// Tune changes the configuration before the hub starts (log level, ...).
	Tune func(*config.Config)
	// Migrations are the sets the test database gets (hub.Migrations() when empty).
	Migrations []store.MigrationSet
}

// StartDemo starts the hub with its demo and returns once the API serves. The demo's registry
// database, created beside the test's own, is dropped when the test ends.
func StartDemo(t *testing.T, o Options) Hub {
	t.Helper()
	sets := o.Migrations
	if len(sets) == 0 {
		sets = hub.Migrations()
	}
	db := pgtest.NewDB(t, sets...)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), db.URL)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db.Name + "_demo_registry"}.Sanitize()+" WITH (FORCE)")
			_ = conn.Close(context.Background())
		}
	})
	kc := kafkatest.New(t, 2)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = db.URL
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Brokers = kc.Config.Brokers
	cfg.Kafka.TopicPrefix = event.DefaultPrefix
	cfg.Demo = true
	if o.Tune != nil {
		o.Tune(&cfg)
	}
	require.NoError(t, cfg.Validate())
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan hub.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- hub.Run(ctx, cfg, hub.Options{
			Logger:   logger,
			Registry: connectors.NewRegistry(csv.Kind(), hsds.Kind(), ngogrants.Kind(), residents.Kind()),
			Getenv:   func(string) string { return "" }, // no key: the demo makes its own
			Started:  func(a hub.Addrs) { started <- a },
		})
	}()
	h := Hub{DB: db, Kafka: kc, DataDir: cfg.DataDir}
	select {
	case h.Addrs = <-started:
	case err := <-done:
		cancel()
		require.FailNow(t, "hub stopped before serving", "%v", err)
	case <-time.After(90 * time.Second):
		cancel()
		require.FailNow(t, "hub did not start within 90s")
	}
	var once sync.Once
	h.Stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "clean shutdown")
			case <-time.After(30 * time.Second):
				t.Error("hub did not stop within 30s")
			}
		})
	}
	t.Cleanup(h.Stop)
	return h
}
