package changes_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/changes"
)

// A stream in another process than the relay's wakes through PostgreSQL's NOTIFY: with a polling
// fallback far longer than the test, the event still arrives promptly.
func TestListenerWakesStreamsOfOtherProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	b.startRelay(t, b.outbox, nil, 100) // a relay without an in-process notifier: another process

	n := changes.NewNotifier()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- changes.NewListener(b.db.Pool, n, discard()).Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	mux := http.NewServeMux()
	changes.NewFeedAPI(changes.FeedAPIOptions{
		Feed: changes.NewFeed(b.db.Pool), Notifier: n, PollInterval: time.Hour, Heartbeat: time.Hour,
	}).Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	stream, resp := openStream(t, srv.URL+"/v1/changes/stream?after=0", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	time.Sleep(200 * time.Millisecond) // the listener is listening and the stream waits
	start := time.Now()
	appendCommitted(t, b.db, b.outbox, created(1, "Комната прохлады"))
	e := stream.next(t)
	require.Equal(t, "1", e.id)
	require.Less(t, time.Since(start), 5*time.Second)
}

// Pruning keeps what a webhook subscription still has to fan out or deliver.
func TestPruneKeepsWhatWebhooksNeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFeed(t, time.Second)
	subs := changes.NewSubscriptions(b.db.Pool)
	appendCommitted(t, b.db, b.outbox, created(1, "a"))
	b.waitPublished(t, 1)
	_, _, err := subs.Create(ctx, "o", "http://127.0.0.1:9/", changes.Filter{})
	require.NoError(t, err) // subscribed after event 1: only 2 and 3 are its
	appendCommitted(t, b.db, b.outbox, created(2, "b"), created(3, "c"))
	b.waitPublished(t, 3)
	_, err = b.db.Pool.Exec(ctx, `UPDATE changes_outbox SET published_at = now() - interval '2 hours'`)
	require.NoError(t, err)

	n, err := b.feed.Prune(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "events 2 and 3 are not fanned out to the subscription yet")

	// Fanned out (the receiver is unreachable, so they stay pending): still kept, but the
	// feed's retention moves on.
	d := changes.NewDeliverer(changes.DelivererOptions{Pool: b.db.Pool, Logger: discard(), PollInterval: 5 * time.Millisecond,
		RetryBase: time.Hour, Timeout: 100 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = d.Run(runCtx) }()
	require.Eventually(t, func() bool {
		backlog, err := subs.Backlog(ctx)
		return err == nil && backlog == 2
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-stopped
	n, err = b.feed.Prune(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "pending deliveries keep their events")
	pruned, _, err := b.feed.Bounds(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, pruned)
	total, _ := counts(t, b.outbox)
	require.EqualValues(t, 2, total)
}
