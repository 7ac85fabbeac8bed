// Package store owns the connection to PostgreSQL and the migration machinery: Open returns a
// checked pool, and Migrate applies the embedded migration sets of the packages that own tables,
// recording each applied version in the schema_migrations table.
//
// A migration set is a directory of NNN_slug.up.sql and NNN_slug.down.sql files (NNN: three or more
// digits, from 1). Each version runs in its own transaction together with its schema_migrations row,
// and a session advisory lock keeps concurrent Migrate calls (two hub processes starting together)
// from racing.
package store
