package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrLeaseLost is returned when this process no longer holds the connectors' lease: another took
// over (this one was too slow to renew, or was cut off from the database).
var ErrLeaseLost = errors.New("connectors lease lost")

// Lease makes one process at a time the runner of the connectors, among any number of processes
// with the connectors role. It is a row in PostgreSQL with a holder and an expiry that the holder
// renews; a holder that dies stops renewing and another process takes over once it expired.
type Lease struct {
	pool   *pgxpool.Pool
	name   string
	holder string
	ttl    time.Duration
	log    *slog.Logger
}

// NewLease returns the lease name for holder (a name unique to this process: host and pid).
func NewLease(pool *pgxpool.Pool, name, holder string, ttl time.Duration, log *slog.Logger) *Lease {
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Lease{pool: pool, name: name, holder: holder, ttl: ttl, log: log}
}

// TakeOver takes the lease whoever holds it. Only for a process that knows it is alone: the hub on
// its own embedded PostgreSQL, where a holder left by a killed predecessor would otherwise delay
// the connectors until its lease expired.
func (l *Lease) TakeOver(ctx context.Context) error {
	_, err := l.pool.Exec(ctx, `UPDATE connector_lease SET expires_at = now() - interval '1 second' WHERE name = $1`, l.name)
	if err != nil {
		return fmt.Errorf("error taking over the %s lease: %w", l.name, err)
	}
	return nil
}

// TryAcquire takes the lease if it is free, expired or already ours, and returns its epoch.
func (l *Lease) TryAcquire(ctx context.Context) (int64, bool, error) {
	var epoch int64
	err := l.pool.QueryRow(ctx, `
		INSERT INTO connector_lease (name, holder, epoch, expires_at) VALUES ($1, $2, 1, now() + $3::interval)
		ON CONFLICT (name) DO UPDATE SET
			holder = EXCLUDED.holder,
			epoch = CASE WHEN connector_lease.holder = EXCLUDED.holder THEN connector_lease.epoch ELSE connector_lease.epoch + 1 END,
			expires_at = EXCLUDED.expires_at
		WHERE connector_lease.holder = EXCLUDED.holder OR connector_lease.expires_at < now()
		RETURNING epoch`, l.name, l.holder, l.ttl.String()).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("error taking the %s lease: %w", l.name, err)
	}
	return epoch, true, nil
}

// renew extends the lease if this holder still has it at this epoch.
func (l *Lease) renew(ctx context.Context, epoch int64) error {
	tag, err := l.pool.Exec(ctx, `UPDATE connector_lease SET expires_at = now() + $4::interval
		WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`, l.name, l.holder, epoch, l.ttl.String())
	if err != nil {
		return fmt.Errorf("error renewing the %s lease: %w", l.name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// release gives the lease up at once, so another process takes over without waiting for expiry.
func (l *Lease) release(ctx context.Context, epoch int64) {
	_, err := l.pool.Exec(ctx, `UPDATE connector_lease SET expires_at = now() - interval '1 second'
		WHERE name = $1 AND holder = $2 AND epoch = $3`, l.name, l.holder, epoch)
	if err != nil {
		l.log.Warn("error releasing the lease; it expires by itself", "lease", l.name, "error", err)
	}
}

// Hold waits until it holds the lease, then runs fn with a context that ends when the lease is
// lost or ctx ends; it renews the lease meanwhile. When fn returns because the lease was lost, Hold
// tries again; it returns when ctx ends.
func (l *Lease) Hold(ctx context.Context, fn func(ctx context.Context) error) error {
	poll := l.ttl / 3
	for {
		epoch, ok, err := l.TryAcquire(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			l.log.Warn("cannot reach the lease, retrying", "lease", l.name, "error", err)
		}
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(poll):
			}
			continue
		}
		l.log.Info("holding the lease: this process runs the connectors", "lease", l.name, "holder", l.holder, "epoch", epoch)
		if err := l.hold(ctx, epoch, fn); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (l *Lease) hold(ctx context.Context, epoch int64, fn func(ctx context.Context) error) error {
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- fn(hctx) }()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			l.release(context.WithoutCancel(ctx), epoch)
			return err
		case <-tick.C:
			if err := l.renew(ctx, epoch); err != nil && ctx.Err() == nil {
				// Stop at once: past the expiry another process may take over, and two runners
				// would race on the same checkpoints.
				l.log.Warn("lost the lease; stopping the connectors", "lease", l.name, "error", err)
				cancel(ErrLeaseLost)
				<-done
				return nil
			}
		}
	}
}
