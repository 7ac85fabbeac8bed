package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

type testBundle struct {
	ctx  context.Context
	root string // a directory the PostgreSQL user can reach
	dir  string // the data directory
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// Not t.TempDir: its directories are 0700, which the postgres user cannot enter when we are root.
	root, err := os.MkdirTemp("", "pgcluster-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(root, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	return &testBundle{ctx: ctx, root: root, dir: filepath.Join(root, "pg")}
}

// start starts a cluster and stops it when the test ends.
func (b *testBundle) start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = b.dir
	}
	c, err := Start(b.ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.StopImmediate(context.Background()) })
	return c
}

func execSQL(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

func count(t *testing.T, ctx context.Context, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&n))
	return n
}

func postmasterPid(t *testing.T, dir string) int {
	t.Helper()
	info, ok, err := readPidFile(dir)
	require.NoError(t, err)
	require.True(t, ok)
	return info.pid
}

func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.start(t, Options{Throwaway: true, Database: "hub"})

	require.NotZero(t, c.Port())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/hub?sslmode=disable", c.Port()), c.URL())
	require.Equal(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port()), c.AdminURL())

	conn, err := pgx.Connect(b.ctx, c.URL())
	require.NoError(t, err)
	var db, encoding, fsync, conns string
	require.NoError(t, conn.QueryRow(b.ctx,
		`SELECT current_database(), current_setting('server_encoding'), current_setting('fsync'), current_setting('max_connections')`).
		Scan(&db, &encoding, &fsync, &conns))
	require.Equal(t, []string{"hub", "UTF8", "off", "200"}, []string{db, encoding, fsync, conns})
	var lexemes string
	require.NoError(t, conn.QueryRow(b.ctx, `SELECT to_tsvector('russian', 'Социальные услуги для пенсионеров')::text`).Scan(&lexemes))
	require.Contains(t, lexemes, "'социальн'")
	require.NoError(t, conn.Close(b.ctx))

	execSQL(t, b.ctx, c.URL(), `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('да')`)
	port := c.Port()

	require.NoError(t, c.Stop(b.ctx))
	require.NoError(t, c.Stop(b.ctx), "stop is idempotent")
	_, err = pgx.Connect(b.ctx, c.URL())
	require.Error(t, err)

	require.NoError(t, c.Restart(b.ctx))
	require.Equal(t, port, c.Port())
	require.Equal(t, 1, count(t, b.ctx, c.URL(), `SELECT count(*) FROM kept WHERE v = 'да'`))
	require.NoError(t, c.Restart(b.ctx), "restarting a running cluster does nothing")
	require.NoError(t, c.Stop(b.ctx))
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The hub's settings: durability on.
	c := b.start(t, Options{})
	require.Equal(t, 1, count(t, b.ctx, c.URL(), `SELECT (current_setting('fsync') = 'on')::int`))
	require.Equal(t, 1, count(t, b.ctx, c.URL(), `SELECT (current_setting('max_wal_size') = '4GB' AND
		pg_size_bytes(current_setting('shared_buffers')) >= 128 * 1024 * 1024)::int`), "room for a large ingest")
	execSQL(t, b.ctx, c.URL(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)`)

	// An immediate stop skips the shutdown checkpoint; the next start replays the WAL.
	require.NoError(t, c.StopImmediate(b.ctx))
	c = b.start(t, Options{})
	execSQL(t, b.ctx, c.URL(), `INSERT INTO kept VALUES (2)`)

	// A postmaster killed outright leaves a stale postmaster.pid behind.
	pid := postmasterPid(t, b.dir)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !processAlive(pid) }, 10*time.Second, 20*time.Millisecond)
	require.FileExists(t, filepath.Join(b.dir, "postmaster.pid"))
	c = b.start(t, Options{})
	require.Equal(t, 2, count(t, b.ctx, c.URL(), `SELECT count(*) FROM kept`))

	// A postmaster.pid whose pid now belongs to another program (here: this test) is stale too.
	require.NoError(t, c.Stop(b.ctx))
	fake := fmt.Sprintf("%d\n%s\n0\n%d\n\n127.0.0.1\n0 0\nready\n", os.Getpid(), b.dir, c.Port())
	require.NoError(t, os.WriteFile(filepath.Join(b.dir, "postmaster.pid"), []byte(fake), 0o600))
	c = b.start(t, Options{})
	require.Equal(t, 2, count(t, b.ctx, c.URL(), `SELECT count(*) FROM kept`))
	require.NoError(t, c.Stop(b.ctx))
}

func TestReuseAfterKilledHub(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.start(t, Options{Throwaway: true})
	execSQL(t, b.ctx, first.URL(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)`)
	pid := postmasterPid(t, b.dir)

	// A new hub process on the same directory, the old one never having stopped its cluster.
	second := b.start(t, Options{Throwaway: true})
	require.Equal(t, first.Port(), second.Port())
	require.Equal(t, pid, postmasterPid(t, b.dir), "the running postmaster is reused")
	require.Equal(t, 1, count(t, b.ctx, second.URL(), `SELECT count(*) FROM kept`))

	// Asking for another port replaces the left-over postmaster.
	port, err := freePort()
	require.NoError(t, err)
	third := b.start(t, Options{Throwaway: true, Port: port})
	require.Equal(t, port, third.Port())
	require.NotEqual(t, pid, postmasterPid(t, b.dir))
	require.Equal(t, 1, count(t, b.ctx, third.URL(), `SELECT count(*) FROM kept`))

	require.NoError(t, third.Stop(b.ctx))
	require.NoError(t, first.Stop(b.ctx), "stopping an already stopped cluster is fine")
}

func TestFindBinary(t *testing.T) {
	t.Parallel()
	p, err := FindBinary("initdb")
	require.NoError(t, err)
	require.FileExists(t, p)
	require.True(t, filepath.IsAbs(p))

	_, err = FindBinary("no-such-postgres-program")
	require.ErrorIs(t, err, ErrNoPostgres)
	require.Contains(t, err.Error(), "apt-get install -y postgresql")
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]int{"15": {15, 0}, "9.6": {9, 6}, "17": {17, 0}} {
		major, minor, ok := parseVersion(in)
		require.True(t, ok, in)
		require.Equal(t, want, [2]int{major, minor}, in)
	}
	for _, in := range []string{"", "x", "15.x", "latest"} {
		_, _, ok := parseVersion(in)
		require.False(t, ok, in)
	}
}

func TestBlockedDataDir(t *testing.T) {
	t.Parallel()
	b := setup(t)
	closed := filepath.Join(b.root, "closed")
	require.NoError(t, os.Mkdir(closed, 0o700))
	dataDir := filepath.Join(closed, "pg")
	u, err := postgresUser()
	require.NoError(t, err)

	c, err := Start(b.ctx, Options{DataDir: dataDir, Throwaway: true})
	if u.cred == nil {
		// Not root: PostgreSQL runs as the owner of the directory, so nothing blocks it.
		require.NoError(t, err)
		require.NoError(t, c.Stop(b.ctx))
		return
	}
	require.ErrorIs(t, err, ErrDirBlocked)
	require.Contains(t, err.Error(), "cannot enter "+closed+" ")
	require.True(t, strings.Contains(err.Error(), "chmod o+x "+closed), err.Error())
	require.NoFileExists(t, filepath.Join(dataDir, "PG_VERSION"))

	require.NoError(t, os.Chmod(closed, 0o711))
	require.NoError(t, u.checkReach(b.ctx, dataDir))
}

func TestCPUTimeGrowsWithWork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.start(t, Options{Database: "hub", Throwaway: true, Settings: map[string]string{"work_mem": "7MB", "cluster_name": "it's ours"}})
	var workMem, name string
	conn, err := pgx.Connect(b.ctx, c.URL())
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(b.ctx, `SELECT current_setting('work_mem'), current_setting('cluster_name')`).Scan(&workMem, &name))
	require.NoError(t, conn.Close(b.ctx))
	require.Equal(t, []string{"7MB", "it's ours"}, []string{workMem, name}, "Settings reach the server, quotes escaped")

	before, err := c.CPUTime()
	require.NoError(t, err)
	require.Positive(t, before, "the postmaster and its helpers used some CPU starting up")
	// A query that burns CPU in a backend: the backend's time counts while it lives and, reaped,
	// through the postmaster's children's times.
	execSQL(t, b.ctx, c.URL(), `SELECT count(*) FROM generate_series(1, 3000000) g WHERE md5(g::text) LIKE 'a%'`)
	after, err := c.CPUTime()
	require.NoError(t, err)
	require.Greater(t, after-before, 100*time.Millisecond)

	require.NoError(t, c.Stop(b.ctx))
	_, err = c.CPUTime()
	require.ErrorIs(t, err, ErrNotRunning)
}

func TestSharedBuffers(t *testing.T) {
	t.Parallel()
	require.EqualValues(t, 128, sharedBuffersMB(0), "unknown memory: PostgreSQL's default")
	require.EqualValues(t, 512, sharedBuffersMB(2<<30))
	require.EqualValues(t, 1024, sharedBuffersMB(24<<30))
	require.Positive(t, memTotalBytes())
}
