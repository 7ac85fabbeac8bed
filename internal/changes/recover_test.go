package changes_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/changes"
)

// runRelay runs a relay with recovery (Kafka configured) until ctx ends or the test does.
func (b testBundle) runRelay(t *testing.T, ctx context.Context, outbox *changes.Outbox, p producer, batch int) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	r := changes.NewRelay(changes.RelayOptions{
		Outbox: outbox, Producer: p, Topics: b.kafka.Topics, Kafka: b.kafka.Config, Logger: discard(),
		Interval: 5 * time.Millisecond, BatchSize: batch,
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return done
}

// killAfterWrite writes for real, then kills its relay (cancels its context) before it can mark
// the rows published — the crash between Kafka's acknowledgement and the mark.
type killAfterWrite struct {
	w      *kafka.Writer
	after  int32 // writes before the kill
	writes atomic.Int32
	kill   context.CancelFunc
}

func (k *killAfterWrite) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	if k.writes.Add(1) == k.after {
		k.kill()
		return context.Canceled
	}
	return nil
}

// requireOnceInOrder checks that the changes topic holds each of n events exactly once and every
// entity's versions strictly increasing.
func requireOnceInOrder(t *testing.T, got []published, n int) {
	t.Helper()
	require.ElementsMatch(t, changeIDs(1, n), ids(got), "each event exactly once")
	last := map[string]int64{}
	for _, p := range got { // per partition order; an entity lives in one partition
		require.Greater(t, p.data.Version, last[p.data.ID], "entity %s goes forward", p.data.ID)
		last[p.data.ID] = p.data.Version
	}
}

// A relay that takes over after one was killed between publishing and marking finds the
// published events on the topic's tail and does not publish them again: versions never go back.
func TestRelayKilledBetweenPublishAndMark(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	appendCommitted(t, b.db, b.outbox, created(1, "a"), created(2, "b"), updated(1, 2, "a2"))
	appendCommitted(t, b.db, b.outbox, updated(2, 2, "b2"), updated(1, 3, "a3"))

	ctxA, killA := context.WithCancel(context.Background())
	doneA := b.runRelay(t, ctxA, b.outbox, &killAfterWrite{w: b.writer, after: 1, kill: killA}, 3)
	<-doneA // relay A died with its first batch (3 events) written and not marked
	total, backlog := counts(t, b.outbox)
	require.EqualValues(t, 5, total)
	require.EqualValues(t, 5, backlog)

	pool, err := pgxpool.New(context.Background(), b.db.URL) // relay B is another process
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b.runRelay(t, context.Background(), changes.NewOutbox(pool), b.writer, 3)
	b.waitPublished(t, 5)
	requireOnceInOrder(t, b.changesTopic(t), 5)
	require.Len(t, b.kafka.ReadAll(t, b.kafka.Topics.Catalog), 5)

	evs, err := changes.NewFeed(b.db.Pool).Read(context.Background(), 0, 10, changes.Filter{Types: []string{}})
	require.NoError(t, err)
	require.Len(t, evs, 5)
	for i, e := range evs {
		require.EqualValues(t, i+1, e.Seq)
	}
}

// Two relays race on one database while events keep coming and the publisher is killed twice
// between publishing and marking: every event is on the topic once, each entity in version
// order, and the feed's positions are dense and follow publication.
func TestTwoRelaysRacingWithKills(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	pool, err := pgxpool.New(context.Background(), b.db.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var wg sync.WaitGroup
	const rounds = 40
	wg.Go(func() {
		for i := range rounds {
			appendCommitted(t, b.db, b.outbox, updated(i%5+1, int64(i/5+1), "x"), created(100+i, "y"))
			time.Sleep(time.Millisecond)
		}
	})
	ctxA, killA := context.WithCancel(context.Background())
	b.runRelay(t, ctxA, b.outbox, &killAfterWrite{w: b.writer, after: 2, kill: killA}, 4)
	ctxB, killB := context.WithCancel(context.Background())
	b.runRelay(t, ctxB, changes.NewOutbox(pool), &killAfterWrite{w: b.writer, after: 3, kill: killB}, 4)
	wg.Wait()
	require.Eventually(t, func() bool { return ctxA.Err() != nil || ctxB.Err() != nil }, 20*time.Second, 5*time.Millisecond,
		"a publisher was killed between publishing and marking")
	// Both may be dead by now; a third relay finishes the job.
	b.runRelay(t, context.Background(), b.outbox, b.writer, 4)
	b.waitPublished(t, 2*rounds)
	requireOnceInOrder(t, b.changesTopic(t), 2*rounds)

	evs, err := changes.NewFeed(b.db.Pool).Read(context.Background(), 0, 1000, changes.Filter{Types: []string{}})
	require.NoError(t, err)
	require.Len(t, evs, 2*rounds)
	last := map[string]int64{}
	for i, e := range evs {
		require.EqualValues(t, i+1, e.Seq, "dense feed positions")
		require.Greater(t, e.Version, last[e.ID])
		last[e.ID] = e.Version
	}
}
