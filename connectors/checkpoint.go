package connectors

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Save stores a position outside a run (tests, operators resetting a source). Callers save only
// after Kafka acknowledged every record before it.
func (c *Checkpoints) Save(ctx context.Context, source string, pos Position, records int64) error {
	_, err := c.pool.Exec(ctx, saveCheckpointSQL, source, []byte(pos), records)
	if err != nil {
		return fmt.Errorf("error saving checkpoint of %s: %w", source, err)
	}
	return nil
}

const saveCheckpointSQL = `
	INSERT INTO connector_checkpoints (source, position, records, updated_at) VALUES ($1, $2, $3, now())
	ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position,
		records = connector_checkpoints.records + EXCLUDED.records, updated_at = now()`

// RunCounts are what a run did so far.
type RunCounts struct {
	// Read counts records the source returned; Emitted those written to raw (deletes of a
	// snapshot included); Rejected those sent to dlq by the connector; Deleted the deletes a
	// completed snapshot emitted for records it no longer holds.
	Read     int64 `json:"read"`
	Emitted  int64 `json:"emitted"`
	Rejected int64 `json:"rejected"`
	Deleted  int64 `json:"deleted"`
}

// batchCommit is what one flush makes durable, in one transaction, after Kafka acknowledged it.
type batchCommit struct {
	source   string
	runID    int64
	pos      Position // nil: leave the position alone
	produced int64
	counts   RunCounts
	snapshot string   // the snapshot id, "" for sources that are not snapshots
	keys     []string // external ids this batch listed (snapshot sources)
	types    []string // their entity types
}

func (c *Checkpoints) commitBatch(ctx context.Context, b batchCommit) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if b.pos != nil {
			if _, err := tx.Exec(ctx, saveCheckpointSQL, b.source, []byte(b.pos), b.produced); err != nil {
				return fmt.Errorf("error saving checkpoint of %s: %w", b.source, err)
			}
		}
		if len(b.keys) > 0 {
			// A source may list one id twice (a duplicated row): one upsert may not touch a row twice.
			b.keys, b.types = dedupeKeys(b.keys, b.types)
			_, err := tx.Exec(ctx, `
				INSERT INTO connector_snapshot_keys (source, external_id, entity_type, snapshot)
				SELECT $1, k.id, k.typ, $2 FROM unnest($3::text[], $4::text[]) AS k(id, typ)
				ON CONFLICT (source, external_id) DO UPDATE SET snapshot = EXCLUDED.snapshot, entity_type = EXCLUDED.entity_type`,
				b.source, b.snapshot, b.keys, b.types)
			if err != nil {
				return fmt.Errorf("error recording snapshot keys of %s: %w", b.source, err)
			}
		}
		return c.updateRun(ctx, tx, b.runID, b.counts)
	})
}

func (c *Checkpoints) updateRun(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, runID int64, n RunCounts) error {
	_, err := q.Exec(ctx, `UPDATE connector_runs SET read = $2, emitted = $3, rejected = $4, deleted = $5, records = $3 WHERE id = $1`,
		runID, n.Read, n.Emitted, n.Rejected, n.Deleted)
	if err != nil {
		return fmt.Errorf("error recording run progress: %w", err)
	}
	return nil
}

// staleKeys returns up to limit records earlier snapshots listed and snapshot does not.
func (c *Checkpoints) staleKeys(ctx context.Context, source, snapshot string, limit int) (ids, types []string, err error) {
	rows, err := c.pool.Query(ctx, `
		SELECT external_id, entity_type FROM connector_snapshot_keys
		WHERE source = $1 AND snapshot <> $2 ORDER BY external_id LIMIT $3`, source, snapshot, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("error listing records gone from %s: %w", source, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			return nil, nil, fmt.Errorf("error listing records gone from %s: %w", source, err)
		}
		ids, types = append(ids, id), append(types, typ)
	}
	return ids, types, rows.Err()
}

// emptySnapshot tells whether a snapshot listed no record at all.
func (c *Checkpoints) emptySnapshot(ctx context.Context, source, snapshot string) (bool, error) {
	var listed bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connector_snapshot_keys WHERE source = $1 AND snapshot = $2)`, source, snapshot).Scan(&listed)
	if err != nil {
		return false, fmt.Errorf("error reading the snapshot of %s: %w", source, err)
	}
	return !listed, nil
}

// forgetKeys removes keys whose deletes Kafka acknowledged, with the run's counts, in one
// transaction.
func (c *Checkpoints) forgetKeys(ctx context.Context, source string, ids []string, runID int64, n RunCounts) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM connector_snapshot_keys WHERE source = $1 AND external_id = ANY($2)`, source, ids); err != nil {
			return fmt.Errorf("error forgetting records gone from %s: %w", source, err)
		}
		return c.updateRun(ctx, tx, runID, n)
	})
}

// Run statuses.
const (
	RunRunning = "running"
	RunOK      = "ok"
	RunFailed  = "failed"
)

// RunInfo is one connector run as stored.
type RunInfo struct {
	ID         int64      `json:"id"`
	Source     string     `json:"source"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	Full       bool       `json:"full"`
	Trigger    string     `json:"trigger"`
	RunCounts
}

// Duration is how long the run took, or has taken so far.
func (r RunInfo) Duration(now time.Time) time.Duration {
	if r.FinishedAt != nil {
		return r.FinishedAt.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}

func (c *Checkpoints) startRun(ctx context.Context, source string, full bool, trigger string) (int64, error) {
	var id int64
	err := c.pool.QueryRow(ctx, `INSERT INTO connector_runs (source, started_at, status, full_run, trigger) VALUES ($1, now(), $2, $3, $4) RETURNING id`,
		source, RunRunning, full, trigger).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("error recording run of %s: %w", source, err)
	}
	return id, nil
}

func (c *Checkpoints) finishRun(ctx context.Context, id int64, n RunCounts, runErr error) error {
	status, msg := RunOK, ""
	if runErr != nil {
		status, msg = RunFailed, runErr.Error()
	}
	_, err := c.pool.Exec(ctx, `
		UPDATE connector_runs SET finished_at = now(), status = $2, error = NULLIF($3, ''),
			read = $4, emitted = $5, rejected = $6, deleted = $7, records = $5
		WHERE id = $1`, id, status, msg, n.Read, n.Emitted, n.Rejected, n.Deleted)
	if err != nil {
		return fmt.Errorf("error recording end of run: %w", err)
	}
	return nil
}

const runColumns = `id, source, started_at, finished_at, status, coalesce(error, ''), full_run, trigger, read, emitted, rejected, deleted`

func scanRun(row pgx.Row) (RunInfo, error) {
	var r RunInfo
	err := row.Scan(&r.ID, &r.Source, &r.StartedAt, &r.FinishedAt, &r.Status, &r.Error, &r.Full, &r.Trigger,
		&r.Read, &r.Emitted, &r.Rejected, &r.Deleted)
	return r, err
}

// LastRuns returns the latest run of every source.
func (c *Checkpoints) LastRuns(ctx context.Context) ([]RunInfo, error) {
	rows, err := c.pool.Query(ctx, `SELECT DISTINCT ON (source) `+runColumns+` FROM connector_runs ORDER BY source, started_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("error listing runs: %w", err)
	}
	defer rows.Close()
	var out []RunInfo
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("error reading runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Run returns one run by id.
func (c *Checkpoints) Run(ctx context.Context, id int64) (RunInfo, error) {
	r, err := scanRun(c.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM connector_runs WHERE id = $1`, id))
	if err != nil {
		return r, fmt.Errorf("error reading run %d: %w", id, err)
	}
	return r, nil
}

// Completed tells whether a source ever finished a run successfully.
func (c *Checkpoints) Completed(ctx context.Context, source string) (bool, error) {
	var ok bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connector_runs WHERE source = $1 AND status = $2)`, source, RunOK).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("error reading runs of %s: %w", source, err)
	}
	return ok, nil
}

// Interrupted tells whether the source's latest run never finished (the process died in it).
func (c *Checkpoints) Interrupted(ctx context.Context, source string) (bool, error) {
	var status string
	err := c.pool.QueryRow(ctx, `SELECT status FROM connector_runs WHERE source = $1 ORDER BY started_at DESC, id DESC LIMIT 1`, source).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("error reading runs of %s: %w", source, err)
	}
	return status != RunOK, nil
}

// MarkAbandoned closes runs left "running" by a process that died, so status pages do not show
// them running forever. Call it at start, before any run begins.
func (c *Checkpoints) MarkAbandoned(ctx context.Context) error {
	_, err := c.pool.Exec(ctx, `UPDATE connector_runs SET status = $1, error = 'the hub stopped during this run', finished_at = coalesce(finished_at, now()) WHERE status = $2`,
		RunFailed, RunRunning)
	if err != nil {
		return fmt.Errorf("error closing abandoned runs: %w", err)
	}
	return nil
}

// dedupeKeys keeps the last entity type of each external id, in first-seen order.
func dedupeKeys(keys, types []string) ([]string, []string) {
	at := make(map[string]int, len(keys))
	outK, outT := keys[:0:0], types[:0:0]
	for i, k := range keys {
		if j, ok := at[k]; ok {
			outT[j] = types[i]
			continue
		}
		at[k] = len(outK)
		outK, outT = append(outK, k), append(outT, types[i])
	}
	return outK, outT
}
