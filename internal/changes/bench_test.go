package changes_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/kafkatest"
	"socialhub/internal/metrics"
	"socialhub/internal/pgtest"
)

// BenchmarkFanOut measures change fan-out: b.N changes committed to the outbox in transactions of
// 50, published by the relay, streamed to 100 SSE clients and delivered to one webhook receiver.
// It reports events/s (commit of the first to the last client's receipt of the last) and the p99
// latency from outbox commit to receipt, for SSE and for the webhook. "burst" commits as fast as
// it can (throughput; latency then includes queueing), "paced" commits 10 changes every 20 ms
// (500 changes/s: latency under a steady load).
func BenchmarkFanOut(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchmarkFanOut(b, 50, 0) })
	b.Run("paced", func(b *testing.B) { benchmarkFanOut(b, 10, 20*time.Millisecond) })
}

func benchmarkFanOut(b *testing.B, perTx int, pace time.Duration) {
	const clients = 100
	db := pgtest.NewDB(b, changes.Migrations())
	kc := kafkatest.New(b, 4)
	w := broker.NewWriter(kc.Config)
	b.Cleanup(func() { _ = w.Close() })
	outbox, notifier := changes.NewOutbox(db.Pool), changes.NewNotifier()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	relay := changes.NewRelay(changes.RelayOptions{
		Outbox: outbox, Producer: w, Topics: kc.Topics, Logger: discard(),
		Interval: 5 * time.Millisecond, BatchSize: 500, Notifier: notifier,
	})
	wg.Go(func() { _ = relay.Run(ctx) })
	mux := http.NewServeMux()
	changes.NewFeedAPI(changes.FeedAPIOptions{Feed: changes.NewFeed(db.Pool), Notifier: notifier}).Mount(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)

	n := b.N
	commitAt := make([]atomic.Int64, n)
	latency := func(outboxSeq int64, at time.Time) time.Duration {
		c := commitAt[outboxSeq-1].Load()
		return max(0, at.Sub(time.Unix(0, c)))
	}

	// The webhook receiver records the latency of each first delivery.
	var hookMu sync.Mutex
	hookLat := make([]time.Duration, 0, n)
	hookDone := make(chan struct{})
	var hookOnce sync.Once
	rcv := newReceiver(b)
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rcv.serve(w, r)
		hookMu.Lock()
		defer hookMu.Unlock()
		got := rcv.received()
		for _, p := range got[len(hookLat):] {
			hookLat = append(hookLat, latency(p.Data.OutboxSeq, time.Now()))
		}
		if len(hookLat) == n {
			hookOnce.Do(func() { close(hookDone) })
		}
	})
	subs := changes.NewSubscriptions(db.Pool)
	_, secret, err := subs.Create(ctx, "bench", rcv.srv.URL, changes.Filter{Types: []string{}})
	require.NoError(b, err)
	rcv.trust(secret)
	m := metrics.New()
	d := changes.NewDeliverer(changes.DelivererOptions{Pool: db.Pool, Notifier: notifier, Metrics: m, Logger: discard(), Concurrency: 32})
	wg.Go(func() { _ = d.Run(ctx) })

	sseLat := make([][]time.Duration, clients)
	var sseWG sync.WaitGroup
	for c := range clients {
		cl, resp := openStream(b, srv.URL+"/v1/changes/stream", "")
		require.Equal(b, http.StatusOK, resp.StatusCode)
		sseWG.Go(func() {
			lat := make([]time.Duration, 0, n)
			for e := range cl.events {
				lat = append(lat, latency(e.data.OutboxSeq, time.Now()))
				if len(lat) == n {
					break
				}
			}
			sseLat[c] = lat
		})
	}
	time.Sleep(100 * time.Millisecond) // every stream is attached

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += perTx {
		tx, err := db.Pool.Begin(ctx)
		require.NoError(b, err)
		var chs []catalog.Change
		for j := i; j < min(n, i+perTx); j++ {
			chs = append(chs, created(j+1, "Комната прохлады"))
		}
		require.NoError(b, outbox.Append(ctx, tx, chs))
		require.NoError(b, tx.Commit(ctx))
		now := time.Now().UnixNano()
		for j := i; j < min(n, i+perTx); j++ {
			commitAt[j].Store(now)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
	offered := float64(n) / time.Since(start).Seconds()
	sseWG.Wait()
	sseElapsed := time.Since(start)
	select {
	case <-hookDone:
	case <-time.After(5 * time.Minute):
		require.FailNow(b, "webhook deliveries did not finish")
	}
	hookElapsed := time.Since(start)
	b.StopTimer()
	var relaySecs float64
	require.NoError(b, db.Pool.QueryRow(ctx, `SELECT extract(epoch FROM max(published_at) - min(created_at)) FROM changes_outbox`).Scan(&relaySecs))
	b.ReportMetric(float64(n)/relaySecs, "relayed/s")

	var all []time.Duration
	for _, l := range sseLat {
		require.Len(b, l, n)
		all = append(all, l...)
	}
	b.ReportMetric(offered, "committed/s")
	b.ReportMetric(float64(n)/sseElapsed.Seconds(), "events/s")
	b.ReportMetric(float64(n*clients)/sseElapsed.Seconds(), "sse-msgs/s")
	b.ReportMetric(quantile(all, 50).Seconds()*1000, "sse-p50-ms")
	b.ReportMetric(quantile(all, 99).Seconds()*1000, "sse-p99-ms")
	b.ReportMetric(float64(n)/hookElapsed.Seconds(), "webhook-events/s")
	hookMu.Lock()
	b.ReportMetric(quantile(hookLat, 50).Seconds()*1000, "webhook-p50-ms")
	b.ReportMetric(quantile(hookLat, 99).Seconds()*1000, "webhook-p99-ms")
	hookMu.Unlock()
}

// quantile returns the q-th percentile of ds.
func quantile(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*q)/100]
}
