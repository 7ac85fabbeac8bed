package faults_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"socialhub/internal/pgcluster"
	"socialhub/internal/pgtest"
)

// TestPostgresStoppedMidBatch: the hub's PostgreSQL dies without a checkpoint (`pg_ctl stop -m
// immediate`, as a crash or a failover would) in the middle of the ingest and comes back; the hub
// rides it out (or its supervisor starts it again) and the catalog ends as an uninterrupted run's.
func TestPostgresStoppedMidBatch(t *testing.T) {
	t.Parallel()
	ref := reference(t)
	e := newEnv(t, rows())
	// This scenario needs a server of its own to stop: not the shared test server.
	ctx := context.Background()
	// Outside t.TempDir, whose 0700 parent the postgres OS user (as which PostgreSQL runs under
	// root) cannot enter.
	dir, err := os.MkdirTemp("", "socialhub-faults-pg-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "postgres"), Database: "socialhub"})
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cl.Stop(sctx)
	})
	pool, err := pgxpool.New(ctx, cl.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	e.db = &pgtest.DB{Pool: pool, URL: cl.URL(), Name: "socialhub"}

	e.startHub()
	e.waitApplied(minFlow())
	before := e.applied()
	require.NoError(t, cl.StopImmediate(ctx))
	time.Sleep(time.Second) // the stages fail their batches meanwhile
	require.NoError(t, cl.Restart(ctx))
	e.waitApplied(before + minFlow())
	e.settle(ref)
}
