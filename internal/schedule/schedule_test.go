package schedule_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/config"
	"socialhub/internal/schedule"
)

// runner records runs; a run of a source in hold blocks until released.
type runner struct {
	mu    sync.Mutex
	runs  []connectors.RunOptions
	names []string
	hold  map[string]chan struct{}
	panic string
	next  int64
}

func (r *runner) Run(ctx context.Context, src config.Source, ro connectors.RunOptions) (connectors.RunResult, error) {
	r.mu.Lock()
	r.next++
	id := r.next
	r.runs = append(r.runs, ro)
	r.names = append(r.names, src.Name)
	hold := r.hold[src.Name]
	p := r.panic
	r.mu.Unlock()
	if ro.Started != nil {
		ro.Started(id)
	}
	if p != "" && p == src.Name {
		panic("mapping bug")
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	return connectors.RunResult{RunID: id}, nil
}

func (r *runner) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.names {
		if x == name {
			n++
		}
	}
	return n
}

// history says which sources completed a run and which were interrupted.
type history struct{ completed, interrupted map[string]bool }

func (h history) Completed(_ context.Context, s string) (bool, error)   { return h.completed[s], nil }
func (h history) Interrupted(_ context.Context, s string) (bool, error) { return h.interrupted[s], nil }

type bundle struct {
	runner *runner
	sched  *schedule.Scheduler
	cancel context.CancelFunc
	done   chan error
}

func setup(t *testing.T, h history, sources ...config.Source) bundle {
	t.Helper()
	r := &runner{hold: map[string]chan struct{}{}}
	s := schedule.New(r, h, sources, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("scheduler did not stop")
		}
	})
	return bundle{runner: r, sched: s, cancel: cancel, done: done}
}

func TestRunsAtStartOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	b := setup(t, history{
		completed:   map[string]bool{"done": true, "crashed": true},
		interrupted: map[string]bool{"crashed": true},
	},
		config.Source{Name: "new", Kind: "csv"},
		config.Source{Name: "done", Kind: "csv"},
		config.Source{Name: "crashed", Kind: "csv"},
		config.Source{Name: "off", Kind: "csv", Disabled: true},
	)
	require.Eventually(t, func() bool { return b.runner.count("new") == 1 && b.runner.count("crashed") == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, b.runner.count("done"), "a source that completed runs on its schedule, not at start")
	require.Zero(t, b.runner.count("off"))
	b.runner.mu.Lock()
	require.Equal(t, connectors.TriggerStart, b.runner.runs[0].Trigger)
	b.runner.mu.Unlock()
}

func TestCronScheduleSkipsWhileRunning(t *testing.T) {
	t.Parallel()
	r := &runner{hold: map[string]chan struct{}{"slow": make(chan struct{})}}
	s := schedule.New(r, history{completed: map[string]bool{"slow": true, "tick": true}}, []config.Source{
		{Name: "tick", Kind: "csv", Schedule: "@every 1s"},
		{Name: "slow", Kind: "csv", Schedule: "@every 1s"},
	}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool { return r.count("tick") >= 2 }, 5*time.Second, 10*time.Millisecond)
	// slow started on its first tick and is still running: later ticks are skipped.
	require.Equal(t, 1, r.count("slow"))
	states := s.States()
	require.Len(t, states, 2)
	require.Equal(t, "slow", states[0].Source.Name)
	require.True(t, states[0].Running)
	require.False(t, states[0].Next.IsZero())
	require.WithinDuration(t, time.Now(), states[0].Next, 2*time.Second)
	_, err := s.RunNow("slow", false)
	require.ErrorIs(t, err, schedule.ErrAlreadyRunning)

	// Shutdown waits for the run in flight, which ends with the context.
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("scheduler did not stop")
	}
	_, err = s.RunNow("tick", false)
	require.ErrorIs(t, err, schedule.ErrNotStarted)
}

func TestRunNow(t *testing.T) {
	t.Parallel()
	b := setup(t, history{completed: map[string]bool{"dept": true}}, config.Source{Name: "dept", Kind: "csv"})
	require.Eventually(t, func() bool { _, err := b.sched.RunNow("dept", true); return err == nil }, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return b.runner.count("dept") == 1 }, 5*time.Second, 5*time.Millisecond)
	b.runner.mu.Lock()
	ro := b.runner.runs[0]
	b.runner.mu.Unlock()
	require.True(t, ro.Full)
	require.Equal(t, connectors.TriggerManual, ro.Trigger)

	_, err := b.sched.RunNow("nope", false)
	require.ErrorIs(t, err, schedule.ErrUnknownSource)
}

func TestPanicInRunIsRecovered(t *testing.T) {
	t.Parallel()
	r := &runner{hold: map[string]chan struct{}{}, panic: "bad"}
	s := schedule.New(r, history{completed: map[string]bool{"bad": true}}, []config.Source{{Name: "bad", Kind: "csv"}}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	var err error
	require.Eventually(t, func() bool { _, err = s.RunNow("bad", false); return err == nil }, 5*time.Second, 5*time.Millisecond)
	// The scheduler survived the panic and the source can run again.
	require.Eventually(t, func() bool { _, err = s.RunNow("bad", false); return err == nil }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, 2, r.count("bad"))
}

func TestAddAndRemoveSourcesWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, history{completed: map[string]bool{"known": true}}, config.Source{Name: "dept", Kind: "csv"})
	require.Eventually(t, func() bool { return b.runner.count("dept") == 1 }, 5*time.Second, 5*time.Millisecond)

	// A feed registered while the hub runs gets its first run and then its schedule.
	require.NoError(t, b.sched.AddSource(config.Source{Name: "feed", Kind: "hsds", Schedule: "@every 1s"}))
	require.Eventually(t, func() bool { return b.runner.count("feed") >= 2 }, 5*time.Second, 10*time.Millisecond)
	b.runner.mu.Lock()
	first := b.runner.runs[slices.Index(b.runner.names, "feed")]
	b.runner.mu.Unlock()
	require.Equal(t, connectors.TriggerStart, first.Trigger)
	states := b.sched.States()
	require.Len(t, states, 2)
	require.Equal(t, "feed", states[1].Source.Name)
	require.False(t, states[1].Next.IsZero())
	_, err := b.sched.RunNow("feed", false)
	require.True(t, err == nil || errors.Is(err, schedule.ErrAlreadyRunning), "a dynamic source runs on demand too: %v", err)

	// One that already completed a run elsewhere waits for its schedule.
	require.NoError(t, b.sched.AddSource(config.Source{Name: "known", Kind: "hsds", Schedule: "@every 1h"}))
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, b.runner.count("known"))

	// A bad schedule changes nothing.
	require.Error(t, b.sched.AddSource(config.Source{Name: "feed", Kind: "hsds", Schedule: "every now and then"}))
	src, ok := b.sched.Source("feed")
	require.True(t, ok)
	require.Equal(t, "@every 1s", src.Schedule)

	// Removed, it runs no more.
	require.True(t, b.sched.RemoveSource("feed"))
	require.False(t, b.sched.RemoveSource("feed"))
	time.Sleep(50 * time.Millisecond) // a tick that fired just before the removal may still start
	n := b.runner.count("feed")
	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, n, b.runner.count("feed"))
	_, err = b.sched.RunNow("feed", false)
	require.ErrorIs(t, err, schedule.ErrUnknownSource)
	require.Len(t, b.sched.States(), 2)
}

func TestAddSourceBeforeRun(t *testing.T) {
	t.Parallel()
	r := &runner{hold: map[string]chan struct{}{}}
	s := schedule.New(r, history{}, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, s.AddSource(config.Source{Name: "feed", Kind: "hsds", Schedule: "@every 1h"}))
	require.NoError(t, s.AddSource(config.Source{Name: "off", Kind: "hsds", Disabled: true}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool { return r.count("feed") == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Len(t, s.States(), 1)
	cancel()
	require.NoError(t, <-done)
}

// Started closes once Run takes requests, so a hub can say it is running only then.
func TestStartedClosesWhenRunTakesRequests(t *testing.T) {
	t.Parallel()
	s := schedule.New(nil, nil, nil, nil)
	select {
	case <-s.Started():
		t.Fatal("started before Run")
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Started():
	case <-time.After(10 * time.Second):
		t.Fatal("Run never took requests")
	}
	_, err := s.RunNow("unknown", false)
	require.ErrorIs(t, err, schedule.ErrUnknownSource, "past Started, RunNow is no longer refused as not started")
	cancel()
	require.NoError(t, <-done)
}
