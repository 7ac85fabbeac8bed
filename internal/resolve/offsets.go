package resolve

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

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
		panic(err)
	}
	return store.MigrationSet{Name: "resolve", FS: sub}
}

// loadOffset returns the next offset to read, creating the row at 0 the first time.
func loadOffset(ctx context.Context, pool *pgxpool.Pool, group, topic string, partition int) (int64, error) {
	var off int64
	err := pool.QueryRow(ctx, `
		INSERT INTO resolve_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, 0)
		ON CONFLICT (group_id, topic, partition) DO UPDATE SET group_id = EXCLUDED.group_id
		RETURNING next_offset`, group, topic, partition).Scan(&off)
	if err != nil {
		return 0, fmt.Errorf("error loading offset of %s/%d: %w", topic, partition, err)
	}
	return off, nil
}

// advanceOffset moves the offset from prev to next inside tx, or fails with ErrFenced if another
// consumer moved it first.
func advanceOffset(ctx context.Context, tx pgx.Tx, group, topic string, partition int, generation int32, prev, next int64) error {
	tag, err := tx.Exec(ctx, `
		UPDATE resolve_offsets SET next_offset = $5, generation = $6, updated_at = now()
		WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $4`,
		group, topic, partition, prev, next, generation)
	if err != nil {
		return fmt.Errorf("error advancing offset of %s/%d: %w", topic, partition, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s/%d at %d: %w", topic, partition, prev, ErrFenced)
	}
	return nil
}

// Offsets returns the stored next offsets of a group, per partition (operators, tests, lag).
func Offsets(ctx context.Context, pool *pgxpool.Pool, group, topic string) (map[int]int64, error) {
	rows, err := pool.Query(ctx, `SELECT partition, next_offset FROM resolve_offsets WHERE group_id = $1 AND topic = $2`, group, topic)
	if err != nil {
		return nil, fmt.Errorf("error reading offsets: %w", err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var p int
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("error reading offsets: %w", err)
		}
		out[p] = o
	}
	return out, rows.Err()
}
