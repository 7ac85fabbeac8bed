package changes_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/metrics"
	"socialhub/internal/pgtest"
	"socialhub/internal/store"
)

type testBundle struct {
	db      *pgtest.DB
	outbox  *changes.Outbox
	kafka   *kafkatest.Cluster
	writer  *kafka.Writer
	metrics *metrics.Metrics
}

func setup(t *testing.T, partitions int) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, changes.Migrations())
	kc := kafkatest.New(t, partitions)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	return testBundle{db: db, outbox: changes.NewOutbox(db.Pool), kafka: kc, writer: w, metrics: metrics.New()}
}

type producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// startRelay runs a relay until the returned function (also run at cleanup) stops it.
func (b testBundle) startRelay(t *testing.T, outbox *changes.Outbox, p producer, batchSize int) (stop func()) {
	t.Helper()
	if p == nil {
		p = b.writer
	}
	r := changes.NewRelay(changes.RelayOptions{
		Outbox: outbox, Producer: p, Topics: b.kafka.Topics, Metrics: b.metrics,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Interval: 10 * time.Millisecond, BatchSize: batchSize,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			require.FailNow(t, "relay did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitPublished waits until the outbox holds want events and none waits for the relay.
func (b testBundle) waitPublished(t *testing.T, want int64) {
	t.Helper()
	ctx := context.Background()
	// No require inside the condition: it runs on another goroutine.
	require.Eventually(t, func() bool {
		total, err := b.outbox.Count(ctx)
		if err != nil || total != want {
			return false
		}
		backlog, err := b.outbox.Backlog(ctx)
		return err == nil && backlog == 0
	}, 20*time.Second, 10*time.Millisecond, "outbox of %d events published", want)
}

type published struct {
	msg  kafka.Message
	ev   event.Event
	data changes.ChangeData
}

// changesTopic reads every change event on the changes topic, in partition order.
func (b testBundle) changesTopic(t *testing.T) []published {
	t.Helper()
	var out []published
	for _, m := range b.kafka.ReadAll(t, b.kafka.Topics.Changes) {
		p := published{msg: m}
		require.NoError(t, event.Unmarshal(m.Value, &p.ev))
		require.NoError(t, json.Unmarshal(p.ev.Data, &p.data))
		out = append(out, p)
	}
	return out
}

func ids(ps []published) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ev.ID
	}
	return out
}

// changeIDs returns change-from … change-to.
func changeIDs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, "change-"+strconv.Itoa(i))
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// gauge reads a gauge's value (NaN if it cannot), without failing the test: it is polled.
func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return math.NaN()
	}
	return m.GetGauge().GetValue()
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// The relay publishes committed events in seq order, across batches, to changes and to the
// compacted catalog topic, marks them published, and the backlog drops to zero.
func TestRelayPublishesInSeqOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, 1) // one partition: the topic's order is the publication order
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"), created(3, "c"))
	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"), created(4, "d"))
	appendCommitted(t, b.db, b.outbox, updated(2, 2, "b2"), updated(1, 3, "a3"), created(5, "e"), updated(3, 2, "c2"))
	appendCommitted(t, b.db, b.outbox, updated(4, 2, "d2"), updated(5, 2, "e2"), updated(1, 4, "a4"))
	const n = 12
	b.startRelay(t, b.outbox, nil, 5) // batches of 5, 5 and 2

	b.waitPublished(t, n)
	var unmarked int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM changes_outbox WHERE published_at IS NULL OR published_at < created_at`).Scan(&unmarked))
	require.Zero(t, unmarked)

	got := b.changesTopic(t)
	require.Equal(t, changeIDs(1, n), ids(got), "published once each, in seq order")
	for i, p := range got {
		require.EqualValues(t, i+1, p.data.Seq)
		require.Equal(t, p.data.ID, string(p.msg.Key), "keyed by the canonical id")
		require.Equal(t, p.data.ID, p.ev.Subject)
		require.Equal(t, event.SourceURI("catalog"), p.ev.Source)
		require.Equal(t, "socialhub.catalog.service."+p.data.Op, p.ev.Type)
		require.Equal(t, event.OpUpsert, p.ev.Op)
		require.Equal(t, catalog.EntityService, p.ev.EntityType)
		require.Equal(t, event.ContentType, header(p.msg, "content-type"))
		require.NotEmpty(t, p.data.Entity)
	}
	// Versions of each entity arrive in order.
	last := map[string]int64{}
	for _, p := range got {
		require.Equal(t, last[p.data.ID]+1, p.data.Version, "entity %s", p.data.ID)
		last[p.data.ID] = p.data.Version
	}
	require.JSONEq(t, string(serviceJSON(entityID(1), "a4")), string(got[n-1].data.Entity))
	require.Equal(t, []string{"name"}, got[n-1].data.ChangedFields)

	// The catalog topic carries each entity's state after the change, in the same order.
	state := b.kafka.ReadAll(t, b.kafka.Topics.Catalog)
	require.Len(t, state, n)
	for i, m := range state {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		require.Equal(t, "state-"+strconv.Itoa(i+1), ev.ID)
		require.Equal(t, got[i].data.ID, string(m.Key))
		require.JSONEq(t, string(got[i].data.Entity), string(ev.Data))
	}

	require.Equal(t, float64(n), counter(t, b.metrics.RecordsOut.WithLabelValues("relay", metrics.OutcomePublished)))
	require.Eventually(t, func() bool { return gauge(b.metrics.OutboxBacklog) == 0 }, 10*time.Second, 10*time.Millisecond)
}

// A delete is a change event with op delete and, on the compacted catalog topic, a tombstone: the
// entity's key with a null value, so compaction forgets the entity.
func TestRelayDeleteIsATombstone(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"))
	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"))
	appendCommitted(t, b.db, b.outbox, deleted(1, 3))
	b.startRelay(t, b.outbox, nil, 100)
	b.waitPublished(t, 4)

	var dels []published
	for _, p := range b.changesTopic(t) {
		if p.data.ID == entityID(1) && p.data.Op == catalog.ChangeDeleted {
			dels = append(dels, p)
		}
	}
	require.Len(t, dels, 1)
	del := dels[0]
	require.Equal(t, "change-4", del.ev.ID)
	require.Equal(t, event.OpDelete, del.ev.Op)
	require.Equal(t, "socialhub.catalog.service.deleted", del.ev.Type)
	require.EqualValues(t, 3, del.data.Version)
	require.Empty(t, del.data.Entity)

	var history []kafka.Message
	for _, m := range b.kafka.ReadAll(t, b.kafka.Topics.Catalog) {
		if string(m.Key) == entityID(1) {
			history = append(history, m) // one key, one partition: in order
		} else {
			require.NotNil(t, m.Value, "entity 2 was not deleted")
		}
	}
	require.Len(t, history, 3)
	require.NotNil(t, history[0].Value)
	require.NotNil(t, history[1].Value)
	require.Nil(t, history[2].Value, "the last record of a deleted entity is a tombstone")
}

// Events appended in a transaction are not published before it commits, and never when it rolls
// back. A committed event appended later (higher seq) shows the relay has read past them.
func TestRelaySkipsUncommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 1)
	b.startRelay(t, b.outbox, nil, 100)

	open, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = open.Rollback(ctx) }()
	require.NoError(t, b.outbox.Append(ctx, open, []catalog.Change{created(1, "open")})) // seq 1
	doomed, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = doomed.Rollback(ctx) }()
	require.NoError(t, b.outbox.Append(ctx, doomed, []catalog.Change{created(2, "doomed")})) // seq 2
	appendCommitted(t, b.db, b.outbox, created(3, "marker"))                                 // seq 3

	b.waitPublished(t, 1)
	require.Equal(t, []string{"change-3"}, ids(b.changesTopic(t)))

	require.NoError(t, doomed.Rollback(ctx))
	require.NoError(t, open.Commit(ctx))
	b.waitPublished(t, 2)
	require.Equal(t, []string{"change-3", "change-1"}, ids(b.changesTopic(t)),
		"published once committed; the rolled-back event never")
}

// Two relays on one database: the advisory lock makes one of them the publisher, and the other
// takes over when it stops, without publishing anything twice.
func TestTwoRelaysDoNotDoublePublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 2)
	// The second relay is another process: its own pool.
	pool, err := pgxpool.New(ctx, b.db.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	stopA := b.startRelay(t, b.outbox, nil, 4)
	stopB := b.startRelay(t, changes.NewOutbox(pool), nil, 4)

	total := 0
	for i := range 10 {
		appendCommitted(t, b.db, b.outbox, created(100+i, "x"), updated(i%3+1, int64(i+1), "y"), created(200+i, "z"))
		total += 3
	}
	b.waitPublished(t, int64(total))
	require.Equal(t, 1, advisoryLocks(t, b.db), "one relay holds the lock")

	stopA()
	appendCommitted(t, b.db, b.outbox, created(300, "after"), created(301, "after"))
	total += 2
	b.waitPublished(t, int64(total)) // whichever relay was left publishes
	stopB()

	require.ElementsMatch(t, changeIDs(1, total), ids(b.changesTopic(t)), "each event published exactly once")
	require.Len(t, b.kafka.ReadAll(t, b.kafka.Topics.Catalog), total)
}

// advisoryLocks counts the advisory locks granted in the test's database.
func advisoryLocks(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND granted
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n))
	return n
}

// A relay started after another one stopped publishes only what is new.
func TestRelayRestartDoesNotRepublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 2)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"), created(3, "c"))
	stop := b.startRelay(t, b.outbox, nil, 2)
	b.waitPublished(t, 3)
	stop()
	var firstMarks []time.Time
	rows, err := b.db.Pool.Query(ctx, `SELECT published_at FROM changes_outbox ORDER BY seq`)
	require.NoError(t, err)
	for rows.Next() {
		var at time.Time
		require.NoError(t, rows.Scan(&at))
		firstMarks = append(firstMarks, at)
	}
	require.NoError(t, rows.Err())

	b.startRelay(t, b.outbox, nil, 2)
	appendCommitted(t, b.db, b.outbox, updated(1, 2, "a2"), deleted(2, 2))
	b.waitPublished(t, 5)

	require.ElementsMatch(t, changeIDs(1, 5), ids(b.changesTopic(t)))
	require.Len(t, b.kafka.ReadAll(t, b.kafka.Topics.Catalog), 5)
	for i, want := range firstMarks {
		var at time.Time
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT published_at FROM changes_outbox WHERE seq = $1`, i+1).Scan(&at))
		require.True(t, want.Equal(at), "seq %d was not published again", i+1)
	}
}

// failAfterWrite writes to Kafka for real, then reports a failure once, as when the relay dies
// between Kafka's acknowledgement and marking the rows published.
type failAfterWrite struct {
	w      *kafka.Writer
	failed atomic.Bool
}

var errLostAck = errors.New("acknowledgement lost")

func (f *failAfterWrite) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := f.w.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	if f.failed.CompareAndSwap(false, true) {
		return errLostAck
	}
	return nil
}

// The relay is at-least-once: events written but not marked are published again, with the same
// event ids, so consumers de-duplicate them; nothing is lost.
func TestRelayRepublishesUnmarkedWithSameIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), deleted(1, 2))
	b.startRelay(t, b.outbox, &failAfterWrite{w: b.writer}, 100)
	b.waitPublished(t, 2)

	got := b.changesTopic(t)
	require.Equal(t, []string{"change-1", "change-2", "change-1", "change-2"}, ids(got))
	for i := range 2 {
		require.Equal(t, got[i].data, got[i+2].data, "a republished event is the same event")
		require.Equal(t, got[i].msg.Key, got[i+2].msg.Key)
	}
	state := b.kafka.ReadAll(t, b.kafka.Topics.Catalog)
	require.Len(t, state, 4)
	require.Nil(t, state[3].Value, "the tombstone is last again")
}

// The relay holds its lock for as long as it runs; that must not hold up migrations, which a hub
// process runs when it starts (store.Migrate takes an advisory lock of its own).
func TestRelayDoesNotBlockMigrations(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	b.startRelay(t, b.outbox, nil, 100)
	appendCommitted(t, b.db, b.outbox, created(1, "a"))
	b.waitPublished(t, 1) // the relay holds its lock now
	require.Equal(t, 1, advisoryLocks(t, b.db))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, store.Migrate(ctx, b.db.Pool, changes.Migrations()), "a second process starting up migrates")
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Any op flows through to the event type; an entity merged away (no document after the change)
// is a delete for the envelope and a tombstone on the catalog topic. Each event gets one feed
// position even when the relay publishes it twice (killed between publish and mark).
func TestRelayMergedAndFeedPositionsAfterRepublish(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	merged := catalog.Change{EntityType: catalog.EntityOrganization, EntityID: entityID(2), Op: "merged", Version: 2}
	appendCommitted(t, b.db, b.outbox, created(1, "a"), merged)
	b.startRelay(t, b.outbox, &failAfterWrite{w: b.writer}, 100)
	b.waitPublished(t, 2)

	got := b.changesTopic(t)
	require.Equal(t, "socialhub.catalog.organization.merged", got[1].ev.Type)
	require.Equal(t, event.OpDelete, got[1].ev.Op)
	require.Equal(t, "merged", got[1].data.Op)
	state := b.kafka.ReadAll(t, b.kafka.Topics.Catalog)
	require.Nil(t, state[len(state)-1].Value)

	evs, err := changes.NewFeed(b.db.Pool).Read(context.Background(), 0, 10, changes.Filter{Types: []string{}})
	require.NoError(t, err)
	require.Len(t, evs, 2, "one feed position per event")
	require.Equal(t, []int64{1, 2}, []int64{evs[0].Seq, evs[1].Seq})
	require.Equal(t, "socialhub.catalog.organization.merged", evs[1].Type)
}

// brokerDown refuses every write, as a Kafka the relay cannot reach.
type brokerDown struct{}

func (brokerDown) WriteMessages(context.Context, ...kafka.Message) error {
	return errors.New("broker down")
}

// The backlog gauge counts the unpublished rows behind a full batch, and drops to zero once a
// short batch (every row the relay could see) is published, without counting again.
func TestRelayBacklogGauge(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"), created(3, "c"), created(4, "d"), created(5, "e"))
	stop := b.startRelay(t, b.outbox, brokerDown{}, 2)
	require.Eventually(t, func() bool { return gauge(b.metrics.OutboxBacklog) == 5 }, 10*time.Second, 10*time.Millisecond,
		"the relay stuck behind a full batch reports the whole backlog")
	stop()

	b.startRelay(t, b.outbox, nil, 100)
	b.waitPublished(t, 5)
	require.Eventually(t, func() bool { return gauge(b.metrics.OutboxBacklog) == 0 }, 10*time.Second, 10*time.Millisecond)
}
