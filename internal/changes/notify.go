package changes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Notifier wakes everyone waiting for new feed events in this process. Waiters take the current
// channel with C and wait for it to close; Notify closes it and starts a new one, so a wake-up is
// never lost between reading the feed and starting to wait.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewNotifier returns a notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{})} }

// C returns a channel closed at the next Notify. Take it before reading the feed.
func (n *Notifier) C() <-chan struct{} {
	if n == nil {
		return nil // a nil notifier never wakes; readers fall back to polling
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes every waiter.
func (n *Notifier) Notify() {
	if n == nil {
		return
	}
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// Listener relays the relay's PostgreSQL NOTIFY to a Notifier, so SSE streams and webhook workers
// in processes other than the relay's wake promptly too. Readers poll as a fallback anyway, so a
// lost connection only delays them.
type Listener struct {
	pool     *pgxpool.Pool
	notifier *Notifier
	log      *slog.Logger
}

// NewListener returns a listener that wakes n on every notification.
func NewListener(pool *pgxpool.Pool, n *Notifier, logger *slog.Logger) *Listener {
	if logger == nil {
		logger = slog.Default()
	}
	return &Listener{pool: pool, notifier: n, log: logger}
}

// Run listens until ctx ends, reconnecting after errors.
func (l *Listener) Run(ctx context.Context) error {
	for {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.log.Warn("change listener failed, reconnecting", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (l *Listener) listen(ctx context.Context) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("error acquiring connection: %w", err)
	}
	// A connection that LISTENed must not go back to the pool listening: close it.
	defer func() {
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("error listening on %s: %w", NotifyChannel, err)
	}
	// Events may have been published while we were not listening.
	l.notifier.Notify()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("error waiting for notifications: %w", err)
		}
		l.notifier.Notify()
	}
}
