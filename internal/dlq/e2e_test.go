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

// harness is the real hub pipeline of a test, built the way hub.Run builds it: a connector
// runner, the validate and resolve stages and the dead-letter indexer, on the test's own database
// and Kafka cluster.
type harness struct {
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

func startPipeline(t *testing.T) *harness {
	t.Helper()
	db := pgtest.NewDB(t, migrations()...)
	kc := kafkatest.New(t, 3)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	validator, err := schemas.NewValidator()
	require.NoError(t, err)
	m := metrics.New()
	p := &harness{
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
	src, err := config.NewSource(name, csv.KindName, "@every 1h", map[string]any{"path": path, "columns": cols})
	require.NoError(t, err)
	return src
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
func (p *harness) settled(t *testing.T) {
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

// sink keeps what a runner writes instead of sending it, so a test can stage raw records itself.
type sink struct{ msgs []kafka.Message }

func (s *sink) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	s.msgs = append(s.msgs, msgs...)
	return nil
}

// rawRecords reads a csv source into raw records without sending them.
func (p *harness) rawRecords(t *testing.T, src config.Source) []kafka.Message {
	t.Helper()
	var s sink
	r := connectors.NewRunner(connectors.RunnerOptions{
		Registry: connectors.NewRegistry(csv.Kind()), Checkpoints: connectors.NewCheckpoints(p.pool), Producer: &s,
		Topics: p.kc.Topics, Logger: quiet,
	})
	_, err := r.Run(context.Background(), src, connectors.RunOptions{Full: true})
	require.NoError(t, err)
	return s.msgs
}

// rejectedEarlier turns raw records into the dead letters validate wrote for them under an older
// profile: the records are fine now, the reasons are the old profile's.
func rejectedEarlier(t *testing.T, raw []kafka.Message, topics event.Topics, firstOffset int64) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, len(raw))
	for i, m := range raw {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		m.Offset = firstOffset + int64(i) // where on raw they were read: a dead letter's identity
		dl, err := pipelineDeadLetter(validate.StageName, m, &ev, []event.Reason{{Field: "email", Message: "адрес почты не прошёл старую проверку"}})
		require.NoError(t, err)
		dl.Topic = topics.DLQ
		out[i] = dl
	}
	return out
}

// TestReplayRepublishesOriginals: records validate rejected go back to raw as they were read. The
// ones the current profile accepts land once and their dead letters are resolved; one that still
// fails comes back on dlq with its new reasons, linked to the dead letter it was replayed from.
func TestReplayRepublishesOriginals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startPipeline(t)
	path, ids := departmentFile(t, 3)
	good := p.rawRecords(t, csvSource(t, "ngo-ok", path, csv.DefaultColumns))
	require.Len(t, good, len(ids))
	onePath, oneID := departmentFile(t, 1)
	broken := csv.DefaultColumns
	broken.Email = broken.Phone
	bad := p.rawRecords(t, csvSource(t, "ngo-bad", onePath, broken))

	// The good records' old dead letters, and the broken record through the real validate stage.
	require.NoError(t, p.producer.WriteMessages(ctx, append(rejectedEarlier(t, good, p.kc.Topics, 0), bad...)...))
	var entries []dlq.Entry
	require.Eventually(t, func() bool {
		entries = all(t, p.store, dlq.Filter{Status: dlq.StatusOpen})
		return len(entries) == len(ids)+1
	}, 60*time.Second, 50*time.Millisecond)
	var sel []string
	var badID string
	for _, e := range entries {
		sel = append(sel, e.ID)
		if e.Source == "ngo-bad" {
			badID = e.ID
		}
	}
	require.NotEmpty(t, badID)

	replayer := dlq.NewReplayer(dlq.ReplayerOptions{Store: p.store, Producer: p.producer, Topics: p.kc.Topics, Logger: quiet})
	_, err := replayer.Replay(ctx, dlq.Selection{IDs: append([]string{"нет-такого"}, sel...)})
	var nf *dlq.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, []string{"нет-такого"}, nf.IDs)
	require.Len(t, all(t, p.store, dlq.Filter{Status: dlq.StatusOpen}), len(ids)+1, "an unknown id replays nothing")

	res, err := replayer.Replay(ctx, dlq.Selection{IDs: sel})
	require.NoError(t, err)
	require.Equal(t, len(sel), res.Replayed)
	require.Len(t, res.Republished, len(sel))
	require.Empty(t, res.Reruns)

	// The good ones land and are resolved.
	require.Eventually(t, func() bool {
		stored, err := p.catalog.SourceRecordIDs(ctx, "ngo-ok")
		require.NoError(t, err)
		return slices.Equal(ids, stored)
	}, 60*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return len(all(t, p.store, dlq.Filter{Source: "ngo-ok", Status: dlq.StatusResolved})) == len(ids)
	}, 30*time.Second, 50*time.Millisecond)

	// The broken one is rejected again: a new open dead letter, linked both ways.
	var retry dlq.Entry
	require.Eventually(t, func() bool {
		open := all(t, p.store, dlq.Filter{Source: "ngo-bad", Status: dlq.StatusOpen})
		if len(open) != 1 {
			return false
		}
		retry = open[0]
		return true
	}, 60*time.Second, 50*time.Millisecond)
	old, err := p.store.Get(ctx, badID)
	require.NoError(t, err)
	require.Equal(t, dlq.StatusReplayed, old.Status)
	require.Equal(t, dlq.ModeRepublish, old.ReplayMode)
	require.Equal(t, retry.ID, old.RetriedAs)
	require.Equal(t, badID, retry.RetryOf)
	require.Equal(t, old.ReplayEventID, retry.OriginalID, "the new dead letter is of the replayed record")
	require.Equal(t, event.Key("ngo-bad", oneID[0]), retry.Key)
	require.NotEmpty(t, retry.Reasons)

	// Replaying what was replayed already is skipped, with the reason.
	again, err := replayer.Replay(ctx, dlq.Selection{IDs: []string{badID}})
	require.NoError(t, err)
	require.Zero(t, again.Replayed)
	require.Len(t, again.Skipped, 1)

	// The same good records rejected and replayed once more land nowhere new: same content.
	p.settled(t)
	counts, err := p.catalog.Count(ctx)
	require.NoError(t, err)
	changed, err := p.outbox.Count(ctx)
	require.NoError(t, err)
	// Read again from raw at other positions (a later run of the source), rejected again.
	require.NoError(t, p.producer.WriteMessages(ctx, rejectedEarlier(t, good, p.kc.Topics, 1000)...))
	// They are indexed; the sweep may already have marked them resolved (the content landed
	// earlier): replay the ones still open.
	var second []string
	require.Eventually(t, func() bool {
		return len(all(t, p.store, dlq.Filter{Source: "ngo-ok"})) == 2*len(ids)
	}, 60*time.Second, 50*time.Millisecond)
	for _, e := range all(t, p.store, dlq.Filter{Source: "ngo-ok", Status: dlq.StatusOpen}) {
		second = append(second, e.ID)
	}
	if len(second) > 0 {
		res, err = replayer.Replay(ctx, dlq.Selection{IDs: second})
		require.NoError(t, err)
		require.Equal(t, len(second), res.Replayed)
	}
	p.settled(t)
	after, err := p.catalog.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, counts, after)
	changedAfter, err := p.outbox.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, changed, changedAfter, "replaying content the catalog holds wrote change events")
	// None of them is open any more.
	require.Empty(t, all(t, p.store, dlq.Filter{Source: "ngo-ok", Status: dlq.StatusOpen}))
}
