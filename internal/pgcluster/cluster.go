package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// DefaultDatabase is the database Start creates when Options.Database is empty.
	DefaultDatabase = "socialhub"
	// DefaultStartTimeout bounds how long Start and Restart wait for the server to accept connections.
	DefaultStartTimeout = 60 * time.Second

	// confFile holds the settings Start writes on every start; postgresql.conf includes it.
	confFile    = "socialhub.conf"
	includeLine = "include_if_exists = '" + confFile + "'"
	// portAttempts bounds the retries when a port picked as free is taken before the server binds it.
	portAttempts = 3
)

// Options configure a cluster.
type Options struct {
	// DataDir is the cluster directory (PGDATA); created if missing.
	DataDir string
	// Port is the loopback port to listen on; 0 picks a free one (or keeps the one of a postmaster
	// left running on DataDir).
	Port int
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Database is created if missing after start; default "socialhub".
	Database string
	// Throwaway turns durability off (fsync, synchronous_commit, full_page_writes) for test clusters
	// whose data nobody needs after a crash. The hub's own cluster keeps it on.
	Throwaway bool
	// StartTimeout bounds the wait for the server to accept connections; default one minute.
	StartTimeout time.Duration
	// Settings are more server settings (name → value, written as name = 'value'), for instance
	// shared_preload_libraries for the bench's statement statistics.
	Settings map[string]string
}

// Cluster is a PostgreSQL cluster in a data directory, run by pg_ctl.
type Cluster struct {
	opts    Options
	dataDir string
	logFile string
	binDir  string
	user    osUser
	log     *slog.Logger

	// mu serializes starts and stops; port is read without it.
	mu   sync.Mutex
	port atomic.Int64
	// reused: Start found the cluster already running (a running hub's, say).
	reused bool
}

// Reused tells whether Start found the cluster already running rather than starting it: a command
// that borrowed a running hub's cluster must leave it running.
func (c *Cluster) Reused() bool { return c.reused }

// Start creates the cluster in opts.DataDir if it does not exist, starts it (or reuses a postmaster
// left running on that directory), waits until it accepts connections, and creates opts.Database.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("error starting PostgreSQL: no data directory given")
	}
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("error resolving data directory %s: %w", opts.DataDir, err)
	}
	u, err := postgresUser()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:    opts,
		dataDir: dataDir,
		logFile: dataDir + ".log",
		user:    u,
		log:     opts.Logger.With("data_dir", dataDir),
	}
	if err := c.prepareDirs(ctx); err != nil {
		return nil, err
	}
	if c.binDir, err = binDir(dataDir); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.ensureInclude(); err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	port, running, err := c.running(ctx)
	if err != nil {
		return nil, err
	}
	if running && opts.Port != 0 && port != opts.Port {
		c.log.Info("stopping PostgreSQL left running on another port", "port", port, "want_port", opts.Port)
		if err := c.pgCtlStop(ctx, "fast"); err != nil {
			return nil, err
		}
		running = false
	}
	if running {
		c.port.Store(int64(port))
		c.reused = true
		c.log.Info("reusing PostgreSQL left running on the data directory", "port", port)
	} else if err := c.startFresh(ctx); err != nil {
		return nil, err
	}
	if err := c.ensureDatabase(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// URL is the connection URL of the cluster's database.
func (c *Cluster) URL() string { return c.url(c.opts.Database) }

// AdminURL is the connection URL of the "postgres" maintenance database.
func (c *Cluster) AdminURL() string { return c.url("postgres") }

// Port is the loopback port the server listens on.
func (c *Cluster) Port() int { return int(c.port.Load()) }

// DataDir is the absolute path of the cluster directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// LogFile is the server log, next to the data directory.
func (c *Cluster) LogFile() string { return c.logFile }

// Stop shuts the server down in "fast" mode (sessions are cut, work is checkpointed). Stopping a
// stopped cluster does nothing.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pgCtlStop(ctx, "fast")
}

// StopImmediate kills the server without a checkpoint, as a crash would; the next start replays
// the WAL. It exists for fault tests.
func (c *Cluster) StopImmediate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pgCtlStop(ctx, "immediate")
}

// Restart starts a stopped cluster again on the same port and waits until it accepts connections.
// A running cluster is left as it is.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	port, running, err := c.running(ctx)
	if err != nil {
		return err
	}
	if running {
		c.port.Store(int64(port))
		return nil
	}
	return c.startOn(ctx, c.Port())
}

func (c *Cluster) url(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// prepareDirs creates the data directory and the log file, owned by the PostgreSQL user with the
// modes PostgreSQL demands, and checks that the user can reach them.
func (c *Cluster) prepareDirs(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(c.dataDir), 0o755); err != nil {
		return fmt.Errorf("error creating parent of data directory: %w", err)
	}
	if err := os.Mkdir(c.dataDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("error creating data directory: %w", err)
	}
	// PostgreSQL refuses a data directory others can read.
	if err := os.Chmod(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("error setting mode of data directory: %w", err)
	}
	st, err := os.Stat(c.dataDir)
	if err != nil {
		return fmt.Errorf("error reading data directory: %w", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != c.user.uid {
		if err := c.user.own(c.dataDir); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("error creating PostgreSQL log file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("error creating PostgreSQL log file: %w", err)
	}
	if err := c.user.own(c.logFile); err != nil {
		return err
	}
	return c.user.checkReach(ctx, c.dataDir)
}

// initdb creates the cluster unless the data directory already holds one.
func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	run := func(locale string) ([]byte, error) {
		args := []string{"-D", c.dataDir, "--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=" + locale}
		if c.opts.Throwaway {
			args = append(args, "--no-sync")
		}
		return c.user.command(ctx, filepath.Join(c.binDir, "initdb"), args...).CombinedOutput()
	}
	out, err := run("C.UTF-8")
	if err != nil && bytes.Contains(bytes.ToLower(out), []byte("locale")) {
		// Systems without the C.UTF-8 locale; text search ('russian') does not depend on it.
		c.log.Info("locale C.UTF-8 unavailable, initializing PostgreSQL with locale C")
		out, err = run("C")
	}
	if err != nil {
		return fmt.Errorf("error initializing PostgreSQL cluster in %s: %w: %s", c.dataDir, err, strings.TrimSpace(string(out)))
	}
	c.log.Info("initialized PostgreSQL cluster")
	return nil
}

// ensureInclude makes postgresql.conf read the settings file Start rewrites on every start.
func (c *Cluster) ensureInclude() error {
	p := filepath.Join(c.dataDir, "postgresql.conf")
	conf, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("error reading postgresql.conf: %w", err)
	}
	for _, line := range strings.Split(string(conf), "\n") {
		if strings.TrimSpace(line) == includeLine {
			return nil
		}
	}
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("error opening postgresql.conf: %w", err)
	}
	if _, err := fmt.Fprintf(f, "\n# Settings of socialhub, rewritten on every start.\n%s\n", includeLine); err != nil {
		_ = f.Close()
		return fmt.Errorf("error writing postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("error writing postgresql.conf: %w", err)
	}
	return nil
}

// writeConf writes the settings file for a start on port.
func (c *Cluster) writeConf(port int) error {
	var b strings.Builder
	b.WriteString("# Written by socialhub on every start; edits here are overwritten.\n")
	b.WriteString("listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", port)
	// No Unix socket: clients use TCP, and socket paths have a short length limit.
	b.WriteString("unix_socket_directories = ''\n")
	b.WriteString("max_connections = 200\n")
	if c.opts.Throwaway {
		b.WriteString("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
	} else {
		// The hub's own cluster holds the catalog and a city's residents: a quarter of the memory
		// for the buffer cache (PostgreSQL's advice, at most 1 GiB here), and WAL room for a large
		// ingest without a checkpoint every few seconds (each one writes whole pages again).
		fmt.Fprintf(&b, "shared_buffers = '%dMB'\n", sharedBuffersMB(memTotalBytes()))
		b.WriteString("max_wal_size = '4GB'\ncheckpoint_timeout = '15min'\n")
	}
	for _, k := range slices.Sorted(maps.Keys(c.opts.Settings)) {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(c.opts.Settings[k], "'", "''"))
	}
	p := filepath.Join(c.dataDir, confFile)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("error writing %s: %w", confFile, err)
	}
	return c.user.own(p)
}

// startFresh starts the server on opts.Port, or on a free port, retrying with another one when the
// picked port was taken in between.
func (c *Cluster) startFresh(ctx context.Context) error {
	if c.opts.Port != 0 {
		return c.startOn(ctx, c.opts.Port)
	}
	var err error
	for range portAttempts {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		if err = c.startOn(ctx, port); err == nil || !strings.Contains(c.logTail(), "could not bind") {
			return err
		}
		c.log.Info("picked port was taken, retrying with another", "port", port)
	}
	return err
}

// startOn runs pg_ctl start on port and waits until the server accepts connections. The caller
// holds c.mu.
func (c *Cluster) startOn(ctx context.Context, port int) error {
	if err := c.writeConf(port); err != nil {
		return err
	}
	c.port.Store(int64(port))
	timeout := strconv.Itoa(int(c.opts.StartTimeout.Seconds()))
	out, err := c.user.command(ctx, filepath.Join(c.binDir, "pg_ctl"),
		"start", "-w", "-s", "-t", timeout, "-D", c.dataDir, "-l", c.logFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("error starting PostgreSQL in %s: %w: %s; log %s ends with:\n%s",
			c.dataDir, err, strings.TrimSpace(string(out)), c.logFile, c.logTail())
	}
	ours, err := c.waitReady(ctx, port)
	if err != nil {
		return err
	}
	if !ours {
		return fmt.Errorf("error starting PostgreSQL in %s: port %d is served by another cluster", c.dataDir, port)
	}
	c.log.Info("started PostgreSQL", "port", port)
	return nil
}

// pgCtlStop stops the server in the given mode; a stopped server is fine. The caller holds c.mu.
func (c *Cluster) pgCtlStop(ctx context.Context, mode string) error {
	info, ok, err := readPidFile(c.dataDir)
	if err != nil {
		return err
	}
	if !ok || !processAlive(info.pid) {
		return nil
	}
	timeout := strconv.Itoa(int(c.opts.StartTimeout.Seconds()))
	out, err := c.user.command(ctx, filepath.Join(c.binDir, "pg_ctl"),
		"stop", "-w", "-s", "-t", timeout, "-m", mode, "-D", c.dataDir).CombinedOutput()
	if err != nil {
		if info, ok, _ := readPidFile(c.dataDir); !ok || !processAlive(info.pid) {
			return nil
		}
		return fmt.Errorf("error stopping PostgreSQL in %s (%s mode): %w: %s", c.dataDir, mode, err, strings.TrimSpace(string(out)))
	}
	c.log.Info("stopped PostgreSQL", "mode", mode)
	return nil
}

// running reports whether a postmaster serves the data directory, and its port. It waits for a
// postmaster that is still starting (or recovering), and for one that is shutting down to be gone.
// A postmaster.pid naming a process that is not PostgreSQL is stale and removed. The caller holds
// c.mu.
func (c *Cluster) running(ctx context.Context) (int, bool, error) {
	info, ok, err := readPidFile(c.dataDir)
	if err != nil || !ok {
		return 0, false, err
	}
	if !processExists(info.pid) {
		// Stale: the postmaster replaces the file itself after checking its shared memory is free.
		return 0, false, nil
	}
	if !processAlive(info.pid) {
		// A dead postmaster not yet reaped by its parent (init) still blocks a new one, which takes
		// any existing pid for a live owner. Give the reaper a moment, then drop the file.
		c.waitReaped(ctx, info.pid)
		if processExists(info.pid) {
			c.log.Info("removing postmaster.pid of a dead, unreaped postmaster", "pid", info.pid)
			if err := os.Remove(filepath.Join(c.dataDir, "postmaster.pid")); err != nil {
				return 0, false, fmt.Errorf("error removing stale postmaster.pid: %w", err)
			}
		}
		return 0, false, nil
	}
	if !isPostgres(info.pid) {
		c.log.Info("removing stale postmaster.pid naming another program", "pid", info.pid)
		if err := os.Remove(filepath.Join(c.dataDir, "postmaster.pid")); err != nil {
			return 0, false, fmt.Errorf("error removing stale postmaster.pid: %w", err)
		}
		return 0, false, nil
	}
	if info.status == "stopping" {
		if err := c.waitGone(ctx, info.pid); err != nil {
			return 0, false, err
		}
		return 0, false, nil
	}
	ours, err := c.waitReady(ctx, info.port)
	if err != nil {
		return 0, false, err
	}
	if !ours {
		// The pid now belongs to the postmaster of another cluster: this file is stale.
		if err := os.Remove(filepath.Join(c.dataDir, "postmaster.pid")); err != nil {
			return 0, false, fmt.Errorf("error removing stale postmaster.pid: %w", err)
		}
		return 0, false, nil
	}
	return info.port, true, nil
}

// waitReady waits until a server on port accepts connections and reports whether it serves this
// data directory.
func (c *Cluster) waitReady(ctx context.Context, port int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	u := url.URL{
		Scheme: "postgres", User: url.User("postgres"),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres",
		RawQuery: "sslmode=disable&connect_timeout=5",
	}
	var lastErr error
	for {
		dir, err := serverDataDir(ctx, u.String())
		if err == nil {
			return sameDir(dir, c.dataDir), nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%w within %s on port %d: %w; log %s ends with:\n%s",
				ErrNotReady, c.opts.StartTimeout, port, lastErr, c.logFile, c.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitGone waits for a shutting-down postmaster to exit.
func (c *Cluster) waitGone(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("error waiting for PostgreSQL (pid %d) to shut down: %w", pid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// waitReaped waits a few seconds for a zombie to disappear.
func (c *Cluster) waitReaped(ctx context.Context, pid int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for processExists(pid) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ensureDatabase creates the cluster's database if it is missing.
func (c *Cluster) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.AdminURL())
	if err != nil {
		return fmt.Errorf("error connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, c.opts.Database).Scan(&exists); err != nil {
		return fmt.Errorf("error looking up database %s: %w", c.opts.Database, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{c.opts.Database}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("error creating database %s: %w", c.opts.Database, err)
	}
	c.log.Info("created database", "database", c.opts.Database)
	return nil
}

// logTail returns the last lines of the server log, for error messages.
func (c *Cluster) logTail() string {
	const maxBytes = 4096
	f, err := os.Open(c.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	off := max(st.Size()-maxBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first line is cut
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// serverDataDir connects once and returns the server's data_directory.
func serverDataDir(ctx context.Context, connURL string) (string, error) {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
		return "", err
	}
	return dir, nil
}

// pidFile is what postmaster.pid says: pid, data directory, start time, port, socket directory,
// listen address, shared memory key, status.
type pidFile struct {
	pid    int
	port   int
	status string
}

func readPidFile(dataDir string) (pidFile, bool, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return pidFile{}, false, nil
	}
	if err != nil {
		return pidFile{}, false, fmt.Errorf("error reading postmaster.pid: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		// Being written by a postmaster that is starting; treat as not running yet.
		return pidFile{}, false, nil
	}
	var info pidFile
	if info.pid, err = strconv.Atoi(strings.TrimSpace(lines[0])); err != nil {
		return pidFile{}, false, fmt.Errorf("error reading pid from postmaster.pid: %w", err)
	}
	if info.port, err = strconv.Atoi(strings.TrimSpace(lines[3])); err != nil {
		return pidFile{}, false, fmt.Errorf("error reading port from postmaster.pid: %w", err)
	}
	if len(lines) > 7 {
		info.status = strings.TrimSpace(lines[7])
	}
	return info, true, nil
}

// processExists reports whether pid names a process, zombies included.
func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processAlive reports whether pid names a live (not zombie) process.
func processAlive(pid int) bool {
	if !processExists(pid) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	// The state follows the parenthesized command name: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// isPostgres reports whether pid runs the postgres program; without /proc it assumes so.
func isPostgres(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return true
	}
	return bytes.Contains(cmdline, []byte("postgres"))
}

func sameDir(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(sa, sb)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("error finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("error finding a free port: %w", err)
	}
	return port, nil
}

// sharedBuffersMB is a quarter of memTotal, between PostgreSQL's default of 128 MiB and 1 GiB.
func sharedBuffersMB(memTotal int64) int64 {
	return min(max(memTotal/4>>20, 128), 1024)
}

// memTotalBytes is the machine's memory from /proc/meminfo; 0 where it cannot be read.
func memTotalBytes() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
