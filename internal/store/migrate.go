package store

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrationSet is the migrations of one owning package. The root of FS holds NNN_slug.up.sql and
// NNN_slug.down.sql files; other files are ignored.
type MigrationSet struct {
	Name string
	FS   fs.FS
}

// AppliedMigration is a row of schema_migrations.
type AppliedMigration struct {
	Set       string
	Version   int
	Slug      string
	AppliedAt time.Time
}

// migrateLockKey is the session advisory lock serializing Migrate and MigrateDown within a database
// (advisory locks are per database).
const migrateLockKey int64 = 0x736f6369616c6875 // "socialhu"

var fileName = regexp.MustCompile(`^([0-9]{3,})_([a-z0-9][a-z0-9_]*)\.(up|down)\.sql$`)

type migration struct {
	version int
	slug    string
	up      string
	down    string
	hasUp   bool
	hasDown bool
}

// load reads and validates the set's files, in ascending version order.
func (s MigrationSet) load() ([]migration, error) {
	if s.Name == "" {
		return nil, fmt.Errorf("%w: a migration set has no name", ErrBadMigrations)
	}
	if s.FS == nil {
		return nil, fmt.Errorf("%w: set %q has no files", ErrBadMigrations, s.Name)
	}
	entries, err := fs.ReadDir(s.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("error reading migrations of set %q: %w", s.Name, err)
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(strings.ToLower(e.Name()), ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%w: set %q: file %q is not named NNN_slug.up.sql or NNN_slug.down.sql (three or more digits, lower-case slug, e.g. 001_create_outbox.up.sql)",
				ErrBadMigrations, s.Name, e.Name())
		}
		version, err := strconv.Atoi(m[1])
		if err != nil || version == 0 {
			return nil, fmt.Errorf("%w: set %q: file %q: versions start at 001", ErrBadMigrations, s.Name, e.Name())
		}
		body, err := fs.ReadFile(s.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("error reading migration %s of set %q: %w", e.Name(), s.Name, err)
		}
		mig := byVersion[version]
		if mig == nil {
			mig = &migration{version: version, slug: m[2]}
			byVersion[version] = mig
		}
		if mig.slug != m[2] {
			return nil, fmt.Errorf("%w: set %q: version %d appears as %q and %q", ErrBadMigrations, s.Name, version, mig.slug, m[2])
		}
		switch m[3] {
		case "up":
			if mig.hasUp {
				return nil, fmt.Errorf("%w: set %q: version %d has two up files", ErrBadMigrations, s.Name, version)
			}
			mig.up, mig.hasUp = string(body), true
		case "down":
			if mig.hasDown {
				return nil, fmt.Errorf("%w: set %q: version %d has two down files", ErrBadMigrations, s.Name, version)
			}
			mig.down, mig.hasDown = string(body), true
		}
	}
	out := make([]migration, 0, len(byVersion))
	for _, mig := range byVersion {
		if !mig.hasUp {
			return nil, fmt.Errorf("%w: set %q: version %03d_%s has a down file but no up file", ErrBadMigrations, s.Name, mig.version, mig.slug)
		}
		out = append(out, *mig)
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// Migrate applies the versions of each set that the database lacks, set after set, each version in
// its own transaction together with its schema_migrations row. Files are validated before anything
// runs.
func Migrate(ctx context.Context, pool *pgxpool.Pool, sets ...MigrationSet) error {
	loaded := make([][]migration, len(sets))
	seen := map[string]bool{}
	for i, set := range sets {
		if seen[set.Name] {
			return fmt.Errorf("%w: set %q given twice", ErrBadMigrations, set.Name)
		}
		seen[set.Name] = true
		var err error
		if loaded[i], err = set.load(); err != nil {
			return err
		}
	}
	return withLock(ctx, pool, func(conn *pgxpool.Conn) error {
		for i, set := range sets {
			applied, err := appliedVersions(ctx, conn, set.Name)
			if err != nil {
				return err
			}
			for _, mig := range loaded[i] {
				if applied[mig.version] {
					continue
				}
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, mig.up); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (set_name, version, slug, applied_at) VALUES ($1, $2, $3, now())`,
						set.Name, mig.version, mig.slug)
					return err
				})
				if err != nil {
					return fmt.Errorf("error applying migration %s/%03d_%s: %w", set.Name, mig.version, mig.slug, err)
				}
			}
		}
		return nil
	})
}

// MigrateDown reverts the applied versions of set above toVersion, newest first, each in its own
// transaction; toVersion 0 reverts them all.
func MigrateDown(ctx context.Context, pool *pgxpool.Pool, set MigrationSet, toVersion int) error {
	if toVersion < 0 {
		return fmt.Errorf("error migrating set %q down: negative target version %d", set.Name, toVersion)
	}
	migs, err := set.load()
	if err != nil {
		return err
	}
	byVersion := make(map[int]migration, len(migs))
	for _, m := range migs {
		byVersion[m.version] = m
	}
	return withLock(ctx, pool, func(conn *pgxpool.Conn) error {
		applied, err := appliedVersions(ctx, conn, set.Name)
		if err != nil {
			return err
		}
		var versions []int
		for v := range applied {
			if v > toVersion {
				versions = append(versions, v)
			}
		}
		slices.Sort(versions)
		slices.Reverse(versions)
		// Check every step before reverting any, so a missing file does not stop halfway.
		for _, v := range versions {
			if m, ok := byVersion[v]; !ok || !m.hasDown {
				return fmt.Errorf("%w: set %q version %03d is applied but has no down file", ErrNoDownMigration, set.Name, v)
			}
		}
		for _, v := range versions {
			mig := byVersion[v]
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, mig.down); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE set_name = $1 AND version = $2`, set.Name, v)
				return err
			})
			if err != nil {
				return fmt.Errorf("error reverting migration %s/%03d_%s: %w", set.Name, mig.version, mig.slug, err)
			}
		}
		return nil
	})
}

// Applied lists the applied migrations of every set, by set and version.
func Applied(ctx context.Context, pool *pgxpool.Pool) ([]AppliedMigration, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("error looking up schema_migrations: %w", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := pool.Query(ctx, `SELECT set_name, version, slug, applied_at FROM schema_migrations ORDER BY set_name, version`)
	if err != nil {
		return nil, fmt.Errorf("error listing applied migrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AppliedMigration, error) {
		var a AppliedMigration
		err := row.Scan(&a.Set, &a.Version, &a.Slug, &a.AppliedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("error listing applied migrations: %w", err)
	}
	return out, nil
}

// withLock runs fn on one connection holding the migration lock, with schema_migrations in place.
func withLock(ctx context.Context, pool *pgxpool.Pool, fn func(*pgxpool.Conn) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("error acquiring connection for migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("error taking migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey); uerr != nil {
			// Closing the session is what surely releases a session lock.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		set_name   text NOT NULL,
		version    int NOT NULL,
		slug       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (set_name, version)
	)`); err != nil {
		return fmt.Errorf("error creating schema_migrations: %w", err)
	}
	return fn(conn)
}

func appliedVersions(ctx context.Context, conn *pgxpool.Conn, set string) (map[int]bool, error) {
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations WHERE set_name = $1`, set)
	if err != nil {
		return nil, fmt.Errorf("error reading applied migrations of set %q: %w", set, err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("error reading applied migrations of set %q: %w", set, err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}
