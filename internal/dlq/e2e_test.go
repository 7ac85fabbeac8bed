package dlq_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"socialhub/connectors"
	"socialhub/connectors/csv"
	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/dlq"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/metrics"
	"socialhub/internal/pgtest"
	"socialhub/internal/resolve"
	"socialhub/internal/store"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migrations are the tables the pipeline pieces of these tests use.
func migrations() []store.MigrationSet {
	return []store.MigrationSet{connectors.Migrations(), catalog.Migrations(), eligibility.Migrations(),
		changes.Migrations(), resolve.Migrations(), dlq.Migrations()}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pipeline is the real hub pipeline of a test, built the way hub.Run builds it: a connector
// runner, the validate and resolve stages and the dead-letter indexer, on the test's own database
// and Kafka cluster.
type pipeline struct {
	pool     *pgxpool.Pool
	kc       *kafkatest.Cluster
	producer *kafka.Writer
	runner   *connectors.Runner
	store    *dlq.Store
	catalog  *catalog.Store
	outbox   *changes.Outbox
	indexer  *dlq.Indexer
	metrics  *metrics.Metrics
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	db := pgtest.NewDB(t, migrations()...)
	kc := kafkatest.New(t, 3)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	validator, err := schemas.NewValidator()
	require.NoError(t, err)
	m := metrics.New()
	p := &pipeline{
		pool: db.Pool, kc: kc, producer: w, metrics: m,
		store: dlq.NewStore(db.Pool), catalog: catalog.NewStore(db.Pool), outbox: changes.NewOutbox(db.Pool),
	}
	p.runner = connectors.NewRunner(connectors.RunnerOptions{
		Registry: connectors.NewRegistry(csv.Kind()), Checkpoints: connectors.NewCheckpoints(db.Pool), Producer: w,
		Topics: kc.Topics, Metrics: m, Logger: quiet, BatchSize: 50,
	})
	vstage := validate.New(validate.Options{Kafka: kc.Config, Topics: kc.Topics, Validator: validator, Producer: w, Metrics: m, Logger: quiet})
	rstage := resolve.New(resolve.Options{
		Pool: db.Pool, Catalog: p.catalog, Eligibility: eligibility.NewStore(db.Pool), Outbox: p.outbox,
		Kafka: kc.Config, Topics: kc.Topics, Producer: w, Metrics: m, Logger: quiet, SessionTimeout: 6 * time.Second,
	})
	p.indexer = dlq.NewIndexer(dlq.IndexerOptions{
		Store: p.store, Catalog: p.catalog, Kafka: kc.Config, Topics: kc.Topics, Metrics: m, Logger: quiet,
		SweepInterval: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{vstage.Run, rstage.Run, p.indexer.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("pipeline stage failed: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

// csvSource is a csv source reading path with the given column mapping.
func csvSource(t *testing.T, name, path string, cols csv.Columns) config.Source {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{"path": path, "columns": cols})
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(b, &doc))
	return config.Source{Name: name, Kind: csv.KindName, Schedule: "@every 1h", Options: *doc.Content[0]}
}

// departmentFile writes the demo generator's department file with rows valid rows and no broken
// ones, and returns its path and the rows' ids.
func departmentFile(t *testing.T, rows int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "department.csv")
	f, err := os.Create(path)
	require.NoError(t, err)
	man, err := demo.WriteDepartmentCSV(f, demo.Options{Seed: 11, Rows: rows, Broken: -1})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path, slices.Sorted(slices.Values(man.Valid))
}

// settled waits until every record on raw went to valid or dlq and resolve consumed all of valid.
func (p *pipeline) settled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	sum := func(topic string) int64 {
		ends, err := broker.EndOffsets(ctx, p.kc.Config, topic)
		require.NoError(t, err)
		var n int64
		for _, e := range ends {
			n += e
		}
		return n
	}
	require.Eventually(t, func() bool {
		raw, valid, dead := sum(p.kc.Topics.Raw), sum(p.kc.Topics.Valid), sum(p.kc.Topics.DLQ)
		offs, err := resolve.Offsets(ctx, p.pool, "socialhub-resolve", p.kc.Topics.Valid)
		require.NoError(t, err)
		var done int64
		for _, o := range offs {
			done += o
		}
		// raw ≤ valid + dlq: the connector and the replays of this package also write to dlq.
		return raw <= valid+dead && done == valid
	}, 60*time.Second, 50*time.Millisecond, "the pipeline did not settle")
}

// all lists every dead letter matching f, across pages.
func all(t *testing.T, s *dlq.Store, f dlq.Filter) []dlq.Entry {
	t.Helper()
	var out []dlq.Entry
	for {
		p, err := s.List(context.Background(), f)
		require.NoError(t, err)
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		f.After = p.Next
	}
}

// TestReplayFixedSourceEndToEnd is the promise: a csv source whose column mapping is broken
// (the phone column mapped to the e-mail field) sends every record to dlq; once the mapping is
// fixed, replaying the source lands every record in the catalog exactly once, and the dead letters
// say what happened to them.
func TestReplayFixedSourceEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startPipeline(t)
	path, ids := departmentFile(t, 20)
	const name = "dszn-broken"

	broken := csv.DefaultColumns
	broken.Email = broken.Phone // the mistake: phones land in the e-mail field
	res, err := p.runner.Run(ctx, csvSource(t, name, path, broken), connectors.RunOptions{Full: true})
	require.NoError(t, err)
	require.EqualValues(t, len(ids), res.Emitted)

	// Every record is in dlq, open, with the e-mail among its reasons; none in the catalog.
	var open []dlq.Entry
	require.Eventually(t, func() bool {
		open = all(t, p.store, dlq.Filter{Source: name, Status: dlq.StatusOpen})
		return len(open) == len(ids)
	}, 60*time.Second, 50*time.Millisecond, "the broken records never all reached the index")
	for _, e := range open {
		require.Equal(t, validate.StageName, e.Stage)
		require.Equal(t, event.Key(name, e.Subject), e.Key)
	}
	byReason := all(t, p.store, dlq.Filter{Source: name, Reason: "email"})
	require.Len(t, byReason, len(ids), "every record is rejected for its e-mail")
	p.settled(t)
	stored, err := p.catalog.SourceRecordIDs(ctx, name)
	require.NoError(t, err)
	require.Empty(t, stored)
	require.Equal(t, float64(len(ids)), gauge(t, p.metrics, name))

	// The mapping is fixed; replaying the source re-reads it with the new config.
	fixed := csvSource(t, name, path, csv.DefaultColumns)
	replayer := dlq.NewReplayer(dlq.ReplayerOptions{
		Store: p.store, Producer: p.producer, Topics: p.kc.Topics, Logger: quiet,
		// What the hub's scheduler does with RunNow(name, true), on the source's new config.
		Rerun: func(source string) error {
			require.Equal(t, name, source)
			_, err := p.runner.Run(ctx, fixed, connectors.RunOptions{Full: true, Trigger: connectors.TriggerManual})
			return err
		},
	})
	out, err := replayer.Replay(ctx, dlq.Selection{Source: name})
	require.NoError(t, err)
	require.Equal(t, len(ids), out.Replayed)
	require.Equal(t, []dlq.Rerun{{Source: name, DeadLetters: len(ids)}}, out.Reruns)
	require.Empty(t, out.Skipped)

	// Every record lands, and every dead letter is marked: replayed by the re-run, then resolved.
	require.Eventually(t, func() bool {
		stored, err = p.catalog.SourceRecordIDs(ctx, name)
		require.NoError(t, err)
		return slices.Equal(ids, stored)
	}, 60*time.Second, 50*time.Millisecond, "the fixed records never all reached the catalog")
	require.Eventually(t, func() bool {
		return len(all(t, p.store, dlq.Filter{Source: name, Status: dlq.StatusResolved})) == len(ids)
	}, 30*time.Second, 50*time.Millisecond, "the dead letters were never all resolved")
	for _, e := range all(t, p.store, dlq.Filter{Source: name}) {
		require.Equal(t, dlq.ModeRerun, e.ReplayMode)
		require.NotNil(t, e.ReplayedAt)
		require.NotNil(t, e.ResolvedAt)
		require.Empty(t, e.RetriedAs, "the replay produced no new dead letter")
	}
	require.Len(t, all(t, p.store, dlq.Filter{}), len(ids), "the fixed run sent nothing to dlq")
	require.Zero(t, gauge(t, p.metrics, name))

	// Exactly once: one service per record, and the change events of one landing.
	p.settled(t)
	counts, err := p.catalog.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(ids), counts[catalog.EntityService])
	require.EqualValues(t, len(ids), counts[catalog.CountSourceRecords])
	changed, err := p.outbox.Count(ctx)
	require.NoError(t, err)
	require.Positive(t, changed)

	// Replaying again finds nothing open; a further full run of the fixed source changes nothing:
	// the catalog skips the content hashes it holds, and writes no change event.
	again, err := replayer.Replay(ctx, dlq.Selection{Source: name})
	require.NoError(t, err)
	require.Zero(t, again.Replayed)
	_, err = p.runner.Run(ctx, fixed, connectors.RunOptions{Full: true})
	require.NoError(t, err)
	p.settled(t)
	after, err := p.catalog.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, counts, after)
	changedAfter, err := p.outbox.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, changed, changedAfter, "a second landing of the same records wrote change events")
}

func gauge(t *testing.T, m *metrics.Metrics, source string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "socialhub_dlq_open" {
			continue
		}
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == source {
					return mm.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
