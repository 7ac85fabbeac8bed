// Package schedule runs each configured source on its cron schedule (robfig/cron/v3) and once at
// start, never two runs of the same source at once.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/robfig/cron/v3"

	"socialhub/connectors"
	"socialhub/internal/config"
)

// Runner runs a source once.
type Runner interface {
	Run(ctx context.Context, src config.Source) (connectors.RunResult, error)
}

// Scheduler runs sources.
type Scheduler struct {
	runner  Runner
	sources []config.Source
	logger  *slog.Logger

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

// New returns a scheduler for the enabled sources.
func New(runner Runner, sources []config.Source, logger *slog.Logger) *Scheduler {
	var enabled []config.Source
	for _, s := range sources {
		if !s.Disabled {
			enabled = append(enabled, s)
		}
	}
	return &Scheduler{runner: runner, sources: enabled, logger: logger, running: map[string]bool{}}
}

// Run starts every source once, then on its schedule, until ctx ends; it returns after the runs in
// flight have stopped.
func (s *Scheduler) Run(ctx context.Context) error {
	c := cron.New()
	for _, src := range s.sources {
		if src.Schedule == "" {
			continue
		}
		if _, err := c.AddFunc(src.Schedule, func() { s.trigger(ctx, src) }); err != nil {
			return fmt.Errorf("sources[%s].schedule: %w", src.Name, err)
		}
	}
	for _, src := range s.sources {
		s.trigger(ctx, src)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	s.wg.Wait()
	return nil
}

// trigger starts a run of src unless one is already going.
func (s *Scheduler) trigger(ctx context.Context, src config.Source) {
	s.mu.Lock()
	if s.running[src.Name] || ctx.Err() != nil {
		s.mu.Unlock()
		if ctx.Err() == nil {
			s.logger.Info("source still running, skipping this tick", "source", src.Name)
		}
		return
	}
	s.running[src.Name] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, src.Name)
			s.mu.Unlock()
		}()
		if _, err := s.runner.Run(ctx, src); err != nil && ctx.Err() == nil {
			s.logger.Error("source run failed", "source", src.Name, "error", err)
		}
	}()
}
