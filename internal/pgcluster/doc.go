// Package pgcluster owns the hub's own PostgreSQL cluster: it creates a cluster in a data directory
// with the machine's initdb (first time), starts it with pg_ctl on a loopback port, waits until it
// accepts connections, creates the hub's database, and stops it again.
//
// PostgreSQL refuses to run as root. When the process is root, every PostgreSQL program runs as the
// "postgres" OS user, which then owns the data directory; otherwise they run as the current user.
//
// A hub killed with SIGKILL leaves its postmaster running (pg_ctl starts it in its own session).
// Start reuses such a postmaster when it serves the same data directory: it reads the port from
// postmaster.pid and checks over a connection that the server's data_directory is this one. A stale
// postmaster.pid (its process is gone) is left to pg_ctl and the postmaster, which replace it; one
// whose pid now belongs to another program is removed.
package pgcluster
