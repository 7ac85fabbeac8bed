// Package schedule runs each configured source on its cron schedule (robfig/cron/v3), once at
// start when it never completed a run (or the hub died in its last one), and now when an operator
// asks — never two runs of the same source at once.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"socialhub/connectors"
	"socialhub/internal/config"
)

var (
	// ErrUnknownSource is returned by RunNow for a name that is not a configured, enabled source.
	ErrUnknownSource = errors.New("unknown source")
	// ErrAlreadyRunning is returned by RunNow while the source runs.
	ErrAlreadyRunning = errors.New("source is already running")
	// ErrNotStarted is returned by RunNow before Run started or after it stopped.
	ErrNotStarted = errors.New("scheduler is not running")
)

// Runner runs a source once.
type Runner interface {
	Run(ctx context.Context, src config.Source, ro connectors.RunOptions) (connectors.RunResult, error)
}

// History tells whether a source needs its run at start.
type History interface {
	Completed(ctx context.Context, source string) (bool, error)
	Interrupted(ctx context.Context, source string) (bool, error)
}

// Scheduler runs sources.
type Scheduler struct {
	runner  Runner
	history History
	sources map[string]config.Source
	order   []string
	logger  *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // the context of Run, nil outside it
	cron    *cron.Cron
	entries map[string]cron.EntryID
	running map[string]bool
	wg      sync.WaitGroup
	started chan struct{} // closed when Run first takes requests
	once    sync.Once
}

// Started is closed once Run first takes requests: RunNow answers ErrNotStarted until then.
func (s *Scheduler) Started() <-chan struct{} { return s.started }

// New returns a scheduler for the enabled sources.
func New(runner Runner, history History, sources []config.Source, logger *slog.Logger) *Scheduler {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Scheduler{runner: runner, history: history, sources: map[string]config.Source{}, logger: logger,
		entries: map[string]cron.EntryID{}, running: map[string]bool{}, started: make(chan struct{})}
	for _, src := range sources {
		if !src.Disabled {
			s.sources[src.Name] = src
			s.order = append(s.order, src.Name)
		}
	}
	return s
}

// Run schedules the sources and starts the ones that need a first run, until ctx ends; it returns
// after the runs in flight have stopped.
func (s *Scheduler) Run(ctx context.Context) error {
	c := cron.New(cron.WithChain(cron.Recover(cronLogger{s.logger})))
	s.mu.Lock()
	for _, name := range s.order {
		src := s.sources[name]
		if src.Schedule == "" {
			continue
		}
		id, err := c.AddFunc(src.Schedule, func() { s.trigger(src, connectors.RunOptions{Trigger: connectors.TriggerSchedule}) })
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("sources[%s].schedule: %w", src.Name, err)
		}
		s.entries[name] = id
	}
	s.ctx, s.cron = ctx, c
	s.once.Do(func() { close(s.started) })
	starting := make([]config.Source, 0, len(s.order))
	for _, name := range s.order {
		starting = append(starting, s.sources[name])
	}
	s.mu.Unlock()
	for _, src := range starting {
		need, err := s.needsStartRun(ctx, src.Name)
		if err != nil {
			s.logger.Error("cannot read the source's runs; running it now", "source", src.Name, "error", err)
			need = true
		}
		if need {
			s.trigger(src, connectors.RunOptions{Trigger: connectors.TriggerStart})
		}
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	s.mu.Lock()
	s.ctx, s.cron = nil, nil
	s.entries = map[string]cron.EntryID{}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// needsStartRun: a source runs at start if it never completed a run, or if the hub stopped in
// the middle of its last one (it then resumes from its checkpoint).
func (s *Scheduler) needsStartRun(ctx context.Context, name string) (bool, error) {
	if s.history == nil {
		return true, nil
	}
	done, err := s.history.Completed(ctx, name)
	if err != nil || !done {
		return true, err
	}
	return s.history.Interrupted(ctx, name)
}

// AddSource schedules a source added while the hub runs (an NGO's registered feed), or replaces
// the one of that name; a replaced source's run in flight finishes with its old settings. When
// the scheduler runs, the source also gets its first run as at start. A bad schedule is refused
// and changes nothing.
func (s *Scheduler) AddSource(src config.Source) error {
	if src.Disabled {
		s.RemoveSource(src.Name)
		return nil
	}
	if src.Schedule != "" {
		if _, err := cron.ParseStandard(src.Schedule); err != nil {
			return fmt.Errorf("sources[%s].schedule: %w", src.Name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sources[src.Name]; !ok {
		s.order = append(s.order, src.Name)
	}
	s.sources[src.Name] = src
	if s.cron == nil {
		return nil // Run schedules it with the others
	}
	if id, ok := s.entries[src.Name]; ok {
		s.cron.Remove(id)
		delete(s.entries, src.Name)
	}
	if src.Schedule != "" {
		id, err := s.cron.AddFunc(src.Schedule, func() { s.trigger(src, connectors.RunOptions{Trigger: connectors.TriggerSchedule}) })
		if err != nil {
			return fmt.Errorf("sources[%s].schedule: %w", src.Name, err)
		}
		s.entries[src.Name] = id
	}
	if ctx := s.ctx; ctx != nil {
		// Asking the history takes a query: not under the lock, and not in the caller's way.
		s.wg.Go(func() {
			need, err := s.needsStartRun(ctx, src.Name)
			if err != nil {
				s.logger.Error("cannot read the source's runs; running it now", "source", src.Name, "error", err)
				need = true
			}
			if need {
				s.trigger(src, connectors.RunOptions{Trigger: connectors.TriggerStart})
			}
		})
	}
	return nil
}

// RemoveSource stops scheduling a source; a run in flight finishes. It reports whether the
// source was there.
func (s *Scheduler) RemoveSource(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sources[name]; !ok {
		return false
	}
	delete(s.sources, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	if id, ok := s.entries[name]; ok {
		if s.cron != nil {
			s.cron.Remove(id)
		}
		delete(s.entries, name)
	}
	return true
}

// Source returns the named source, if the scheduler holds it.
func (s *Scheduler) Source(name string) (config.Source, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[name]
	return src, ok
}

// RunNow starts a run of the named source and returns its run id once the run is recorded.
func (s *Scheduler) RunNow(name string, full bool) (int64, error) {
	src, ok := s.Source(name)
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownSource, name)
	}
	started := make(chan int64, 1)
	done := make(chan error, 1)
	ro := connectors.RunOptions{Full: full, Trigger: connectors.TriggerManual, Started: func(id int64) { started <- id }}
	if err := s.start(src, ro, done); err != nil {
		return 0, err
	}
	select {
	case id := <-started:
		return id, nil
	case err := <-done:
		// The run ended before it was recorded (the database is unreachable, say).
		if err == nil {
			err = errors.New("the run ended before it was recorded")
		}
		return 0, err
	}
}

// trigger starts a run unless one is going; a scheduled tick that finds the source running is
// skipped (robfig's SkipIfStillRunning, per source, shared with manual runs).
func (s *Scheduler) trigger(src config.Source, ro connectors.RunOptions) {
	err := s.start(src, ro, nil)
	if errors.Is(err, ErrAlreadyRunning) {
		s.logger.Info("source still running, skipping this tick", "source", src.Name)
	}
}

func (s *Scheduler) start(src config.Source, ro connectors.RunOptions, done chan<- error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return ErrNotStarted
	}
	if s.running[src.Name] {
		return fmt.Errorf("%w: %s", ErrAlreadyRunning, src.Name)
	}
	s.running[src.Name] = true
	ctx := s.ctx
	s.wg.Add(1)
	go func() {
		var err error
		defer s.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: %v", connectors.ErrSourcePanicked, p)
				s.logger.Error("source run panicked", "source", src.Name, "panic", p, "stack", string(debug.Stack()))
			}
			s.mu.Lock()
			delete(s.running, src.Name)
			s.mu.Unlock()
			if done != nil {
				done <- err
			}
		}()
		if _, err = s.runner.Run(ctx, src, ro); err != nil && ctx.Err() == nil {
			s.logger.Error("source run failed", "source", src.Name, "error", err)
		}
	}()
	return nil
}

// SourceState is what the scheduler knows of a source.
type SourceState struct {
	Source  config.Source
	Running bool
	// Next is the next scheduled run, zero when the source has no schedule or the scheduler is
	// not running.
	Next time.Time
}

// States returns every enabled source's state, sorted by name.
func (s *Scheduler) States() []SourceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SourceState, 0, len(s.order))
	for _, name := range s.order {
		st := SourceState{Source: s.sources[name], Running: s.running[name]}
		if id, ok := s.entries[name]; ok && s.cron != nil {
			st.Next = s.cron.Entry(id).Next
		}
		if st.Next.IsZero() && st.Source.Schedule != "" {
			// Before cron started (or in a process waiting for the connectors' lease), the next run
			// is still what the schedule says, whichever process makes it.
			if sch, err := cron.ParseStandard(st.Source.Schedule); err == nil {
				st.Next = sch.Next(time.Now())
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source.Name < out[j].Source.Name })
	return out
}

// cronLogger lets cron's Recover report a panic through slog.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(msg, append([]any{"error", err}, kv...)...)
}
