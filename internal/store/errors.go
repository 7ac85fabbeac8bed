package store

import "errors"

var (
	// ErrBadMigrations means a migration set is malformed: a file name that is not NNN_slug.up.sql or
	// NNN_slug.down.sql, a version given twice, a down file without its up file.
	ErrBadMigrations = errors.New("invalid migration set")

	// ErrNoDownMigration means MigrateDown must revert a version that has no down file in the set.
	ErrNoDownMigration = errors.New("no down migration")
)
