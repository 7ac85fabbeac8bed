package cases

import (
	"context"
	"log/slog"
	"time"

	"socialhub/internal/metrics"
)

// Watcher keeps the overdue gauge current: a case becomes overdue by the clock alone, so no write
// would update it.
type Watcher struct {
	store    *Store
	metrics  *metrics.Metrics
	interval time.Duration
	log      *slog.Logger
}

// NewWatcher returns a watcher that counts overdue cases every interval (default one minute).
func NewWatcher(store *Store, m *metrics.Metrics, interval time.Duration, log *slog.Logger) *Watcher {
	if interval <= 0 {
		interval = time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{store: store, metrics: m, interval: interval, log: log}
}

// Run counts until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		if err := w.Count(ctx); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "overdue cases could not be counted", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Count sets the gauge once: every organization of the rules is set, to zero when none of its
// cases is overdue, so a cleared backlog shows as zero rather than as its last value.
func (w *Watcher) Count(ctx context.Context) error {
	counts, err := w.store.OverdueCounts(ctx)
	if err != nil {
		return err
	}
	for id := range w.store.opts.Rules.orgs {
		w.metrics.ApplicationsOverdue.WithLabelValues(id).Set(float64(counts[id]))
	}
	for id, n := range counts { // an organization since removed from the rules still has its cases
		w.metrics.ApplicationsOverdue.WithLabelValues(id).Set(float64(n))
	}
	return nil
}
