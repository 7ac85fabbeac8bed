package store

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MigrationStatus compares the migrations a binary embeds with those a database has applied.
type MigrationStatus struct {
	// Pending are embedded versions the database lacks: Migrate would apply them.
	Pending []AppliedMigration
	// Unknown are applied versions this binary does not embed: the database was migrated by a
	// newer version (running an older binary against it is a downgrade), or a set was renamed.
	Unknown []AppliedMigration
	// Applied counts the applied versions this binary knows.
	Applied int
}

// Status reports pending and unknown migrations without changing anything (`socialhub doctor`).
// Pending entries have a zero AppliedAt.
func Status(ctx context.Context, pool *pgxpool.Pool, sets ...MigrationSet) (MigrationStatus, error) {
	var st MigrationStatus
	applied, err := Applied(ctx, pool)
	if err != nil {
		return st, err
	}
	have := map[string]map[int]AppliedMigration{}
	for _, a := range applied {
		if have[a.Set] == nil {
			have[a.Set] = map[int]AppliedMigration{}
		}
		have[a.Set][a.Version] = a
	}
	known := map[string]map[int]bool{}
	for _, set := range sets {
		migs, err := set.load()
		if err != nil {
			return st, err
		}
		known[set.Name] = map[int]bool{}
		for _, m := range migs {
			known[set.Name][m.version] = true
			if _, ok := have[set.Name][m.version]; ok {
				st.Applied++
				continue
			}
			st.Pending = append(st.Pending, AppliedMigration{Set: set.Name, Version: m.version, Slug: m.slug})
		}
	}
	for _, a := range applied {
		if !known[a.Set][a.Version] {
			st.Unknown = append(st.Unknown, a)
		}
	}
	return st, nil
}
