// Package pgtest gives each test its own PostgreSQL database, migrated from a template.
//
// The server is the one at SOCIALHUB_TEST_DATABASE_URL when that is set (a URL to any database
// there; test databases are created next to it). Otherwise the first NewDB of a test process
// starts one throwaway cluster (pgcluster, durability off) in a temporary directory named
// socialhub-pgtest-*, which Main stops and removes. A watchdog process removes it too if the test
// process dies without running Main (a panic, a timeout, SIGKILL).
//
// Each distinct list of migration sets is migrated once into a template database; every NewDB then
// runs CREATE DATABASE ... TEMPLATE, and drops its database when the test ends.
package pgtest
