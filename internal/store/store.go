package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolOptions tune a pool; zero values keep pgx's defaults.
type PoolOptions struct {
	MaxConns, MinConns               int32
	MaxConnLifetime, MaxConnIdleTime time.Duration
}

// Open connects a pool to the database at url and checks it answers. TLS and the like come from
// the URL (sslmode, sslrootcert, ...), as pgx reads them.
func Open(ctx context.Context, url string, opts ...PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("error parsing database URL: %w", err)
	}
	for _, o := range opts {
		if o.MaxConns > 0 {
			cfg.MaxConns = o.MaxConns
		}
		if o.MinConns > 0 {
			cfg.MinConns = o.MinConns
		}
		if o.MaxConnLifetime > 0 {
			cfg.MaxConnLifetime = o.MaxConnLifetime
		}
		if o.MaxConnIdleTime > 0 {
			cfg.MaxConnIdleTime = o.MaxConnIdleTime
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("error creating database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("error connecting to database %q on %s:%d as %q: %w",
			cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, err)
	}
	return pool, nil
}
