package connectors_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/connectortest"
	"socialhub/internal/broker"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// list is an in-memory full list: the smallest Snapshotter, to test the runner and the suite.
type list struct {
	mu     sync.Mutex
	ids    []string
	broken map[string]bool
	fail   error // returned by Open when set
}

func newList(n int) *list {
	l := &list{broken: map[string]bool{}}
	for i := range n {
		l.ids = append(l.ids, fmt.Sprintf("rec-%02d", i))
	}
	return l
}

type listSource struct {
	l    *list
	ids  []string
	next int
}

func (l *list) source() *listSource { return &listSource{l: l} }

func (s *listSource) Open(_ context.Context, pos connectors.Position) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.l.fail != nil {
		return s.l.fail
	}
	s.ids = append([]string(nil), s.l.ids...)
	s.next = 0
	if len(pos) > 0 {
		var p struct {
			Snapshot string `json:"snapshot"`
			Next     int    `json:"next"`
		}
		if err := json.Unmarshal(pos, &p); err != nil {
			return err
		}
		if p.Snapshot == s.SnapshotID() {
			s.next = p.Next
		}
	}
	return nil
}

func (s *listSource) SnapshotID() string {
	h := sha256.New()
	for _, id := range s.ids {
		h.Write([]byte(id + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (s *listSource) Read(ctx context.Context) (connectors.Record, error) {
	if err := ctx.Err(); err != nil {
		return connectors.Record{}, err
	}
	if s.next >= len(s.ids) {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	id := s.ids[s.next]
	s.next++
	pos, _ := json.Marshal(map[string]any{"snapshot": s.SnapshotID(), "next": s.next})
	rec := connectors.Record{ExternalID: id, EntityType: "service", Op: event.OpUpsert,
		Data: json.RawMessage(`{"id":"` + id + `","name":"Семейная медиация"}`), Position: pos}
	s.l.mu.Lock()
	if s.l.broken[id] {
		rec.Reasons = []event.Reason{{Field: "organization.inn", Message: "контрольное число ИНН не сходится"}}
	}
	s.l.mu.Unlock()
	return rec, nil
}

func (s *listSource) Ack(context.Context, connectors.Position) error { return nil }
func (s *listSource) Close(context.Context) error                    { return nil }

func TestSuiteOnAnInMemoryList(t *testing.T) {
	t.Parallel()
	l := newList(20)
	l.broken["rec-03"], l.broken["rec-11"] = true, true
	connectortest.Run(t, connectortest.Fixture{
		New:      func(*testing.T) connectors.Source { return l.source() },
		Want:     20,
		Rejected: 2,
		Shrink: func(*testing.T) []string {
			l.mu.Lock()
			defer l.mu.Unlock()
			gone := []string{l.ids[0], l.ids[7], l.ids[19]}
			l.ids = append(append(append([]string(nil), l.ids[1:7]...), l.ids[8:19]...), "rec-new")
			return gone
		},
		Break: func(*testing.T) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.fail = fmt.Errorf("%w: registry answered 503", connectors.ErrBackoffRetry)
		},
	})
}

type bundle struct {
	cluster     *kafkatest.Cluster
	checkpoints *connectors.Checkpoints
	runner      *connectors.Runner
}

func setup(t *testing.T, kinds ...connectors.Kind) bundle {
	t.Helper()
	db := pgtest.NewDB(t, connectors.Migrations())
	cluster := kafkatest.New(t, 1)
	w := broker.NewWriter(cluster.Config)
	t.Cleanup(func() { _ = w.Close() })
	cp := connectors.NewCheckpoints(db.Pool)
	return bundle{cluster: cluster, checkpoints: cp, runner: connectors.NewRunner(connectors.RunnerOptions{
		Registry: connectors.NewRegistry(kinds...), Checkpoints: cp, Producer: w, Topics: cluster.Topics,
		BatchSize: 4, Retries: 2, Backoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})}
}

func kindOf(name string, newSource func() connectors.Source) connectors.Kind {
	return connectors.Kind{Name: name, New: func(config.Source, connectors.Deps) (connectors.Source, error) { return newSource(), nil }}
}

func TestRunCountsAndStatus(t *testing.T) {
	t.Parallel()
	l := newList(10)
	l.broken["rec-05"] = true
	b := setup(t, kindOf("list", func() connectors.Source { return l.source() }))
	ctx := context.Background()
	src := config.Source{Name: "dept", Kind: "list"}

	var started int64
	res, err := b.runner.Run(ctx, src, connectors.RunOptions{Trigger: connectors.TriggerManual, Started: func(id int64) { started = id }})
	require.NoError(t, err)
	require.Equal(t, connectors.RunCounts{Read: 10, Emitted: 9, Rejected: 1}, res.RunCounts)
	require.Equal(t, started, res.RunID)

	run, err := b.checkpoints.Run(ctx, res.RunID)
	require.NoError(t, err)
	require.Equal(t, connectors.RunOK, run.Status)
	require.Equal(t, connectors.TriggerManual, run.Trigger)
	require.Equal(t, res.RunCounts, run.RunCounts)
	require.NotNil(t, run.FinishedAt)

	done, err := b.checkpoints.Completed(ctx, "dept")
	require.NoError(t, err)
	require.True(t, done)
	interrupted, err := b.checkpoints.Interrupted(ctx, "dept")
	require.NoError(t, err)
	require.False(t, interrupted)

	// The rejected record is in dlq with the source's reason and the record as read.
	dead := b.cluster.ReadAll(t, b.cluster.Topics.DLQ)
	require.Len(t, dead, 1)
	var ev event.Event
	require.NoError(t, event.Unmarshal(dead[0].Value, &ev))
	require.Equal(t, "rec-05", ev.Subject)
	var dl event.DeadLetter
	require.NoError(t, json.Unmarshal(ev.Data, &dl))
	require.Equal(t, []event.Reason{{Field: "organization.inn", Message: "контрольное число ИНН не сходится"}}, dl.Reasons)
	require.Contains(t, string(dl.Original), "Семейная медиация")
	require.Equal(t, "dept/rec-05", string(dead[0].Key))

	// A second run over the same list reads nothing; a full run reads it all again.
	res, err = b.runner.Run(ctx, src, connectors.RunOptions{})
	require.NoError(t, err)
	require.Zero(t, res.Read)
	res, err = b.runner.Run(ctx, src, connectors.RunOptions{Full: true})
	require.NoError(t, err)
	require.Equal(t, int64(10), res.Read)
	require.Zero(t, res.Deleted)
}

func TestCancelledRunIsInterrupted(t *testing.T) {
	t.Parallel()
	reading := make(chan struct{})
	b := setup(t, kindOf("slow", func() connectors.Source { return &blocking{reading: reading} }))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-reading; cancel() }()
	start := time.Now()
	_, err := b.runner.Run(ctx, config.Source{Name: "dept", Kind: "slow"}, connectors.RunOptions{})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 5*time.Second, "cancellation stops a run promptly")
	interrupted, err := b.checkpoints.Interrupted(context.Background(), "dept")
	require.NoError(t, err)
	require.True(t, interrupted, "the scheduler runs it again at start")
	done, err := b.checkpoints.Completed(context.Background(), "dept")
	require.NoError(t, err)
	require.False(t, done)
}

// blocking reads nothing until its context ends.
type blocking struct{ reading chan struct{} }

func (s *blocking) Open(context.Context, connectors.Position) error { return nil }
func (s *blocking) Read(ctx context.Context) (connectors.Record, error) {
	close(s.reading)
	<-ctx.Done()
	return connectors.Record{}, ctx.Err()
}
func (s *blocking) Ack(context.Context, connectors.Position) error { return nil }
func (s *blocking) Close(context.Context) error                    { return nil }

// panicky panics in Read.
type panicky struct{ listSource }

func (p *panicky) Read(context.Context) (connectors.Record, error) {
	panic("division by zero in mapping")
}

func TestPanicInSourceFailsTheRunOnly(t *testing.T) {
	t.Parallel()
	l := newList(3)
	b := setup(t, kindOf("bad", func() connectors.Source { return &panicky{listSource{l: l}} }))
	res, err := b.runner.Run(context.Background(), config.Source{Name: "bad", Kind: "bad"}, connectors.RunOptions{})
	require.ErrorIs(t, err, connectors.ErrSourcePanicked)
	run, rerr := b.checkpoints.Run(context.Background(), res.RunID)
	require.NoError(t, rerr)
	require.Equal(t, connectors.RunFailed, run.Status)
	require.Contains(t, run.Error, "division by zero")
}

// retryAfter is a transient error that asks for a wait.
type retryAfter struct{ d time.Duration }

func (e retryAfter) Error() string             { return "429 Too Many Requests" }
func (e retryAfter) Is(target error) bool      { return target == connectors.ErrBackoffRetry }
func (e retryAfter) RetryDelay() time.Duration { return e.d }

func TestTransientFailuresRetryWithBackoffAndRetryAfter(t *testing.T) {
	t.Parallel()
	l := newList(5)
	var mu sync.Mutex
	var opens []time.Time
	b := setup(t, kindOf("flaky", func() connectors.Source {
		return &flaky{listSource: listSource{l: l}, open: func() error {
			mu.Lock()
			defer mu.Unlock()
			opens = append(opens, time.Now())
			if len(opens) < 3 {
				return retryAfter{d: 150 * time.Millisecond}
			}
			return nil
		}}
	}))
	res, err := b.runner.Run(context.Background(), config.Source{Name: "flaky", Kind: "flaky"}, connectors.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(5), res.Emitted)
	require.Len(t, opens, 3)
	// Back-off is 1 ms here; the server's Retry-After of 150 ms wins.
	require.GreaterOrEqual(t, opens[1].Sub(opens[0]), 150*time.Millisecond)

	// A permanent failure is not retried.
	perm := setup(t, kindOf("perm", func() connectors.Source {
		return &flaky{listSource: listSource{l: l}, open: func() error { return errors.New("404 Not Found") }}
	}))
	calls := 0
	perm.runner = connectors.NewRunner(connectors.RunnerOptions{
		Registry: connectors.NewRegistry(kindOf("perm", func() connectors.Source {
			calls++
			return &flaky{listSource: listSource{l: l}, open: func() error { return errors.New("404 Not Found") }}
		})),
		Checkpoints: perm.checkpoints, Producer: broker.NewWriter(perm.cluster.Config), Topics: perm.cluster.Topics,
		Retries: 3, Backoff: time.Millisecond,
	})
	_, err = perm.runner.Run(context.Background(), config.Source{Name: "perm", Kind: "perm"}, connectors.RunOptions{})
	require.ErrorContains(t, err, "404")
	require.Equal(t, 1, calls)
}

type flaky struct {
	listSource
	open func() error
}

func (f *flaky) Open(ctx context.Context, pos connectors.Position) error {
	if err := f.open(); err != nil {
		return err
	}
	return f.listSource.Open(ctx, pos)
}

func TestOversizeRecordGoesToDLQ(t *testing.T) {
	t.Parallel()
	big := &bigSource{}
	b := setup(t, kindOf("big", func() connectors.Source { return big }))
	b.runner = connectors.NewRunner(connectors.RunnerOptions{
		Registry:    connectors.NewRegistry(kindOf("big", func() connectors.Source { return &bigSource{} })),
		Checkpoints: b.checkpoints, Producer: broker.NewWriter(b.cluster.Config), Topics: b.cluster.Topics,
		MaxMessageBytes: 4096,
	})
	res, err := b.runner.Run(context.Background(), config.Source{Name: "big", Kind: "big"}, connectors.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, connectors.RunCounts{Read: 2, Emitted: 1, Rejected: 1}, res.RunCounts)
	dead := b.cluster.ReadAll(t, b.cluster.Topics.DLQ)
	require.Len(t, dead, 1)
	require.Contains(t, string(dead[0].Value), "over the broker")
}

type bigSource struct{ n int }

func (s *bigSource) Open(context.Context, connectors.Position) error { s.n = 0; return nil }
func (s *bigSource) Read(context.Context) (connectors.Record, error) {
	s.n++
	if s.n > 2 {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	name := "ok"
	if s.n == 2 {
		name = strings.Repeat("я", 4000) // 8000 bytes: over the 4096-byte limit
	}
	return connectors.Record{ExternalID: strconv.Itoa(s.n), EntityType: "service", Op: event.OpUpsert,
		Data: json.RawMessage(`{"name":"` + name + `"}`), Position: connectors.Position(strconv.Itoa(s.n))}, nil
}
func (s *bigSource) Ack(context.Context, connectors.Position) error { return nil }
func (s *bigSource) Close(context.Context) error                    { return nil }

func TestEmptySnapshotDeletesNothing(t *testing.T) {
	t.Parallel()
	l := newList(4)
	b := setup(t, kindOf("list", func() connectors.Source { return l.source() }))
	src := config.Source{Name: "dept", Kind: "list"}
	_, err := b.runner.Run(context.Background(), src, connectors.RunOptions{})
	require.NoError(t, err)
	l.mu.Lock()
	l.ids = nil // the export came back empty
	l.mu.Unlock()
	res, err := b.runner.Run(context.Background(), src, connectors.RunOptions{})
	require.NoError(t, err)
	require.Zero(t, res.Deleted)
	// When the list comes back, nothing was lost and nothing needs re-creating.
	l.mu.Lock()
	l.ids = []string{"rec-00", "rec-01", "rec-02"}
	l.mu.Unlock()
	res, err = b.runner.Run(context.Background(), src, connectors.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Deleted, "rec-03 is gone from the real list")
}

// A list that names one id twice (a duplicated row) still runs: both go to raw, the snapshot
// remembers the id once.
func TestDuplicateIDsInOneBatch(t *testing.T) {
	t.Parallel()
	l := newList(3)
	l.ids = append(l.ids, "rec-01")
	b := setup(t, kindOf("list", func() connectors.Source { return l.source() }))
	res, err := b.runner.Run(context.Background(), config.Source{Name: "dept", Kind: "list"}, connectors.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(4), res.Emitted)
}

func TestRunnerUsesTheSourcesContentHash(t *testing.T) {
	t.Parallel()
	b := setup(t, kindOf("hashed", func() connectors.Source { return &hashedSource{} }))
	res, err := b.runner.Run(context.Background(), config.Source{Name: "hashed", Kind: "hashed"}, connectors.RunOptions{})
	require.NoError(t, err)
	require.Equal(t, connectors.RunCounts{Read: 2, Emitted: 2}, res.RunCounts)
	raw := b.cluster.ReadAll(t, b.cluster.Topics.Raw)
	require.Len(t, raw, 2)
	computed, err := event.ContentHash(json.RawMessage(hashedDoc))
	require.NoError(t, err)
	// The first record brings its hash, which the runner takes as it is (a source vouches that it
	// is event.ContentHash's); the second leaves it to the runner.
	for i, want := range []string{"hash-given-by-the-source", computed} {
		var ev event.Event
		require.NoError(t, event.Unmarshal(raw[i].Value, &ev))
		require.Equal(t, want, ev.ContentHash, i)
		require.Equal(t, "hashed/"+strconv.Itoa(i+1), string(raw[i].Key))
		require.Equal(t, "socialhub/hashed", ev.Source)
		require.Equal(t, "socialhub.raw.service.upsert", ev.Type)
		require.Len(t, raw[i].Headers, 1)
		require.Equal(t, event.ContentType, string(raw[i].Headers[0].Value))
	}
}

const hashedDoc = `{"name":"Семейная медиация","id":"x"}`

type hashedSource struct{ n int }

func (s *hashedSource) Open(context.Context, connectors.Position) error { s.n = 0; return nil }
func (s *hashedSource) Read(context.Context) (connectors.Record, error) {
	s.n++
	if s.n > 2 {
		return connectors.Record{}, connectors.ErrEndOfInput
	}
	rec := connectors.Record{ExternalID: strconv.Itoa(s.n), EntityType: "service", Op: event.OpUpsert,
		Data: json.RawMessage(hashedDoc), Position: connectors.Position(strconv.Itoa(s.n))}
	if s.n == 1 {
		rec.ContentHash = "hash-given-by-the-source"
	}
	return rec, nil
}
func (s *hashedSource) Ack(context.Context, connectors.Position) error { return nil }
func (s *hashedSource) Close(context.Context) error                    { return nil }
