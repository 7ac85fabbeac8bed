package connectors

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return store.MigrationSet{Name: "connectors", FS: sub}
}

// Checkpoints stores source positions.
type Checkpoints struct {
	pool *pgxpool.Pool
}

// NewCheckpoints returns the checkpoint store.
func NewCheckpoints(pool *pgxpool.Pool) *Checkpoints { return &Checkpoints{pool: pool} }

// Load returns the stored position of a source, nil if none.
func (c *Checkpoints) Load(ctx context.Context, source string) (Position, error) {
	var pos []byte
	err := c.pool.QueryRow(ctx, `SELECT position FROM connector_checkpoints WHERE source = $1`, source).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("error loading checkpoint of %s: %w", source, err)
	}
	return pos, nil
}

// Save stores a position. Callers save only after Kafka acknowledged every record before it.
func (c *Checkpoints) Save(ctx context.Context, source string, pos Position, records int64) error {
	_, err := c.pool.Exec(ctx, `
		INSERT INTO connector_checkpoints (source, position, records, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position,
			records = connector_checkpoints.records + EXCLUDED.records, updated_at = now()`,
		source, []byte(pos), records)
	if err != nil {
		return fmt.Errorf("error saving checkpoint of %s: %w", source, err)
	}
	return nil
}

// RunInfo is one connector run as stored.
type RunInfo struct {
	ID         int64
	Source     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Records    int64
	Status     string
	Error      string
}

func (c *Checkpoints) startRun(ctx context.Context, source string) (int64, error) {
	var id int64
	err := c.pool.QueryRow(ctx, `INSERT INTO connector_runs (source, started_at, status) VALUES ($1, now(), 'running') RETURNING id`, source).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("error recording run of %s: %w", source, err)
	}
	return id, nil
}

func (c *Checkpoints) finishRun(ctx context.Context, id int64, records int64, runErr error) error {
	status, msg := "ok", ""
	if runErr != nil {
		status, msg = "failed", runErr.Error()
	}
	_, err := c.pool.Exec(ctx, `UPDATE connector_runs SET finished_at = now(), records = $2, status = $3, error = NULLIF($4, '') WHERE id = $1`, id, records, status, msg)
	if err != nil {
		return fmt.Errorf("error recording end of run: %w", err)
	}
	return nil
}

// LastRuns returns the latest run of every source.
func (c *Checkpoints) LastRuns(ctx context.Context) ([]RunInfo, error) {
	rows, err := c.pool.Query(ctx, `
		SELECT DISTINCT ON (source) id, source, started_at, finished_at, records, status, coalesce(error, '')
		FROM connector_runs ORDER BY source, started_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("error listing runs: %w", err)
	}
	defer rows.Close()
	var out []RunInfo
	for rows.Next() {
		var r RunInfo
		if err := rows.Scan(&r.ID, &r.Source, &r.StartedAt, &r.FinishedAt, &r.Records, &r.Status, &r.Error); err != nil {
			return nil, fmt.Errorf("error reading runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
