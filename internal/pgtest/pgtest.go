package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"socialhub/internal/pgcluster"
	"socialhub/internal/store"
)

// EnvURL names the variable pointing the tests at an existing server.
const EnvURL = "SOCIALHUB_TEST_DATABASE_URL"

// tempPrefix names the directories of throwaway clusters, so leftovers are recognizable.
const tempPrefix = "socialhub-pgtest-"

// DB is a test's own database.
type DB struct {
	Pool *pgxpool.Pool
	URL  string
	Name string
}

// server is the PostgreSQL server of this test process.
type server struct {
	base    *url.URL // any database on the server; test databases replace its path
	admin   *pgxpool.Pool
	cluster *pgcluster.Cluster
	tmpDir  string
	// watchdog cleans up the throwaway cluster when the write end of its stdin closes, which the
	// kernel does when this process dies, however it dies.
	watchdog     *exec.Cmd
	watchdogPipe *os.File
}

var (
	serverOnce sync.Once
	srv        *server
	srvErr     error

	// templatesMu serializes template builds in this process; templates maps a key to its database.
	templatesMu sync.Mutex
	templates   = map[string]string{}
	// builds counts the migrations of each template by this process (tests check it stays at one).
	builds = map[string]int{}
)

// Main runs the tests of a package, then stops and removes the throwaway cluster if one was
// started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewDB creates a database for the test with the given migration sets applied, and drops it when
// the test ends.
func NewDB(t testing.TB, sets ...store.MigrationSet) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := getServer()
	require.NoError(t, err)
	tpl, err := s.template(ctx, sets)
	require.NoError(t, err)

	name := "test_" + randomHex(8)
	require.NoError(t, s.createDatabase(ctx, name, tpl))
	db := &DB{URL: s.databaseURL(name), Name: name}
	t.Cleanup(func() {
		if db.Pool != nil {
			db.Pool.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		require.NoError(t, err, "dropping test database %s", name)
	})

	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.MaxConns = 10
	db.Pool, err = pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, db.Pool.Ping(ctx))
	return db
}

func getServer() (*server, error) {
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if raw := os.Getenv(EnvURL); raw != "" {
			srv, srvErr = externalServer(ctx, raw)
		} else {
			srv, srvErr = startServer(ctx)
		}
	})
	return srv, srvErr
}

func externalServer(ctx context.Context, raw string) (*server, error) {
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadServerURL, err)
	}
	if base.Scheme != "postgres" && base.Scheme != "postgresql" {
		return nil, fmt.Errorf("%w (got %q)", ErrBadServerURL, base.Redacted())
	}
	admin, err := store.Open(ctx, raw)
	if err != nil {
		return nil, err
	}
	return &server{base: base, admin: admin}, nil
}

// startServer starts the throwaway cluster of this test process, watched by a process that removes
// it should this one die without running Main.
func startServer(ctx context.Context) (_ *server, err error) {
	tmp, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("error creating directory for the test cluster: %w", err)
	}
	s := &server{tmpDir: tmp}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	// The PostgreSQL OS user (postgres, when we are root) must be able to enter it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("error opening directory for the test cluster: %w", err)
	}
	dataDir := filepath.Join(tmp, "data")
	if err := s.startWatchdog(dataDir); err != nil {
		return nil, err
	}
	if s.cluster, err = pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Throwaway: true, Database: "postgres"}); err != nil {
		return nil, err
	}
	if s.base, err = url.Parse(s.cluster.AdminURL()); err != nil {
		return nil, fmt.Errorf("error parsing test cluster URL: %w", err)
	}
	if s.admin, err = store.Open(ctx, s.cluster.AdminURL()); err != nil {
		return nil, err
	}
	return s, nil
}

// watchdogScript waits for EOF on stdin (this process gone), then kills the postmaster (SIGQUIT is
// PostgreSQL's immediate shutdown) and removes the directory. $1 is the data directory, $2 the
// temporary directory.
const watchdogScript = `read -r _ignored
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
	kill -QUIT "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
fi
rm -rf "$2"`

func (s *server) startWatchdog(dataDir string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("error creating watchdog pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "sh", dataDir, s.tmpDir)
	cmd.Stdin = r
	// Its own session: a Ctrl-C to the test's process group must not kill the watchdog first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = r.Close()
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("error starting test cluster watchdog: %w", err)
	}
	s.watchdog, s.watchdogPipe = cmd, w
	return nil
}

// close stops and removes the throwaway cluster; for an external server it closes the pool.
func (s *server) close() error {
	if s.admin != nil {
		s.admin.Close()
	}
	var errs []error
	if s.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.cluster.StopImmediate(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.tmpDir != "" {
		if err := os.RemoveAll(s.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("error removing test cluster directory: %w", err))
		}
	}
	if s.watchdog != nil {
		_ = s.watchdogPipe.Close()
		_ = s.watchdog.Wait() // it finds nothing left to do
	}
	return errors.Join(errs...)
}

func shutdown() error {
	if srv == nil {
		return nil
	}
	return srv.close()
}

// databaseURL is the server URL with another database.
func (s *server) databaseURL(name string) string {
	u := *s.base
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// template returns the template database holding sets migrated, building it on first use. A
// template left by an earlier run on a shared server is reused: its name is the hash of the sets'
// files, and it is marked IS_TEMPLATE only once fully migrated.
func (s *server) template(ctx context.Context, sets []store.MigrationSet) (string, error) {
	key, err := templateKey(sets)
	if err != nil {
		return "", err
	}
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if name, ok := templates[key]; ok {
		return name, nil
	}
	name := "tpl_" + key[:24]

	// Other test processes on the same server build templates too.
	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("error acquiring admin connection: %w", err)
	}
	defer conn.Release()
	lockKey := int64(binary.BigEndian.Uint64(mustDecodeHex(key[:16])))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return "", fmt.Errorf("error locking template %s: %w", name, err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	var isTemplate *bool
	err = conn.QueryRow(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("error looking up template %s: %w", name, err)
	}
	if isTemplate == nil || !*isTemplate {
		if err := s.buildTemplate(ctx, conn, name, isTemplate != nil, sets); err != nil {
			return "", err
		}
		builds[key]++
	}
	templates[key] = name
	return name, nil
}

func (s *server) buildTemplate(ctx context.Context, conn *pgxpool.Conn, name string, leftover bool, sets []store.MigrationSet) error {
	ident := pgx.Identifier{name}.Sanitize()
	if leftover { // an interrupted build
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("error dropping unfinished template %s: %w", name, err)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return fmt.Errorf("error creating template %s: %w", name, err)
	}
	pool, err := store.Open(ctx, s.databaseURL(name))
	if err != nil {
		return err
	}
	err = store.Migrate(ctx, pool, sets...)
	pool.Close() // no session may stay on a template being copied
	if err != nil {
		return fmt.Errorf("error migrating template %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("error marking template %s: %w", name, err)
	}
	return nil
}

// createDatabase copies the template, retrying while another session still uses it (SQLSTATE
// 55006, e.g. a pool just closed whose backend has not exited yet).
func (s *server) createDatabase(ctx context.Context, name, tpl string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{tpl}.Sanitize()
	for attempt := 1; ; attempt++ {
		_, err := s.admin.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt == 10 {
			if err != nil {
				return fmt.Errorf("error creating test database %s from %s: %w", name, tpl, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("error creating test database %s from %s: %w", name, tpl, ctx.Err())
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// templateKey hashes the set names and every file of the sets, in order.
func templateKey(sets []store.MigrationSet) (string, error) {
	h := sha256.New()
	for _, set := range sets {
		fmt.Fprintf(h, "set\x00%s\x00", set.Name)
		if set.FS == nil {
			continue
		}
		err := fs.WalkDir(set.FS, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(set.FS, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "file\x00%s\x00%d\x00", path, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("error reading migrations of set %q: %w", set.Name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

func mustDecodeHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err) // s comes from hex.EncodeToString
	}
	return b
}
