package pgcluster

import "errors"

var (
	// ErrNoPostgres means the PostgreSQL server programs (initdb, pg_ctl, postgres) are not installed.
	ErrNoPostgres = errors.New("PostgreSQL server programs not found")

	// ErrNoPostgresUser means the process runs as root and there is no unprivileged "postgres" OS
	// user to run PostgreSQL as.
	ErrNoPostgresUser = errors.New("running as root and there is no postgres OS user to run PostgreSQL as")

	// ErrDirBlocked means the OS user running PostgreSQL cannot reach the data directory because a
	// directory on the way does not let it through.
	ErrDirBlocked = errors.New("data directory not reachable by the PostgreSQL OS user")

	// ErrNotReady means the server did not accept connections in time.
	ErrNotReady = errors.New("PostgreSQL did not become ready")

	// ErrNotRunning means the cluster's server is not running.
	ErrNotRunning = errors.New("PostgreSQL is not running")
)
