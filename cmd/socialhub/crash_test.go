package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
)

// childEnv makes the test binary run the hub (`socialhub <args>`) instead of the tests, so the crash
// test can SIGKILL a real hub process without building one.
const childEnv = "SOCIALHUB_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// crashRows is the size of the file loaded under fire: large enough that every phase (reading,
// validating, resolving, relaying) takes long enough to be killed in.
const crashRows = 6000

// TestKillNineMidLoad is the walking skeleton's durability promise: `kill -9` of `socialhub run` in
// the middle of loading, again and again, then a normal start, ends with the catalog of an
// uninterrupted run — nothing lost, nothing doubled — and every broken row on dlq.
func TestKillNineMidLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "department.csv")
	f, err := os.Create(file)
	require.NoError(t, err)
	man, err := demo.WriteDepartmentCSV(f, demo.Options{Seed: 11, Rows: crashRows, Broken: 12})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// Reference: one uninterrupted run.
	refDB := pgtest.NewDB(t, hub.Migrations()...)
	ref := newHubDir(t, refDB, file)
	p := ref.start(t)
	p.waitDone(t, refDB, len(man.Valid))
	p.stop(t)

	// Under fire: killed in each phase of the load, then started and left to finish.
	db := pgtest.NewDB(t, hub.Migrations()...)
	h := newHubDir(t, db, file)
	phases := []struct {
		name   string
		metric string // the phase is under way once this counter of the new process is above 0
	}{
		{"reading the file", `socialhub_records_out_total{outcome="produced",stage="connector"}`},
		{"validating", `socialhub_records_out_total{outcome="valid",stage="validate"}`},
		{"resolving", `socialhub_records_out_total{outcome="applied",stage="resolve"}`},
		{"relaying changes", `socialhub_records_out_total{outcome="published",stage="relay"}`},
	}
	for _, ph := range phases {
		p := h.start(t)
		p.killWhen(t, ph.name, ph.metric)
	}
	p = h.start(t)
	p.waitDone(t, db, len(man.Valid))
	p.stop(t)

	// Same catalog: the same entities, each with the same content and version (a record applied
	// twice would have bumped nothing, a lost one would be missing).
	ctx := context.Background()
	want, err := catalog.NewStore(refDB.Pool).Digest(ctx)
	require.NoError(t, err)
	got, err := catalog.NewStore(db.Pool).Digest(ctx)
	require.NoError(t, err)
	require.Equal(t, len(want), len(got))
	require.Equal(t, want, got)
	wantIDs, err := catalog.NewStore(refDB.Pool).SourceRecordIDs(ctx, "dszn")
	require.NoError(t, err)
	gotIDs, err := catalog.NewStore(db.Pool).SourceRecordIDs(ctx, "dszn")
	require.NoError(t, err)
	require.Len(t, wantIDs, len(man.Valid))
	require.Equal(t, wantIDs, gotIDs)

	// The same change events, each once in the outbox, and every one published.
	wantN, err := changes.NewOutbox(refDB.Pool).Count(ctx)
	require.NoError(t, err)
	gotN, err := changes.NewOutbox(db.Pool).Count(ctx)
	require.NoError(t, err)
	require.Equal(t, wantN, gotN, "change events doubled or lost")
	backlog, err := changes.NewOutbox(db.Pool).Backlog(ctx)
	require.NoError(t, err)
	require.Zero(t, backlog)

	// Every broken row is on dlq, in the broker's data directory that survived the kills (a row
	// rejected again after a kill may be there twice: dlq is at least once, keyed by the row).
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{DataDir: filepath.Join(h.dir, "data", "kafka")})
	require.NoError(t, err)
	defer emb.Close()
	kc := kafkatest.Attach(t, emb, 3)
	dead := map[string]bool{}
	for _, m := range kc.ReadAll(t, kc.Topics.DLQ) {
		dead[string(m.Key)] = true
	}
	broken := map[string]bool{}
	for _, b := range man.Broken {
		broken[event.Key("dszn", b.ID)] = true
	}
	require.Equal(t, broken, dead)
}

// hubDir is one hub installation: its data directory (embedded Kafka) and configuration.
type hubDir struct {
	dir, config string
	dbURL       string
}

func newHubDir(t *testing.T, db *pgtest.DB, file string) hubDir {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
http:
  addr: 127.0.0.1:0
kafka:
  partitions: 3
pipeline:
  batch_size: 200
log:
  level: warn
sources:
  - name: dszn
    kind: csv
    schedule: "@every 1h"
    options:
      path: %s
`, filepath.Join(dir, "data"), file)
	path := filepath.Join(dir, "socialhub.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return hubDir{dir: dir, config: path, dbURL: db.URL}
}

// process is a running hub.
type process struct {
	cmd  *exec.Cmd
	base string // API host:port
	logs *syncWriter
}

func (h hubDir) start(t *testing.T) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--config", h.config)
	cmd.Env = append(os.Environ(), childEnv+"=1", "DATABASE_URL="+h.dbURL)
	return startProcess(t, cmd)
}

// startProcess starts a hub child process and waits until it prints its HTTP address.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	logs := &strings.Builder{}
	cmd.Stderr = &syncWriter{b: logs}
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, logs: &syncWriter{b: logs}}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := httpLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p.base = <-addr:
	case <-time.After(60 * time.Second):
		require.FailNow(t, "hub did not start", "logs:\n%s", p.logs.String())
	}
	return p
}

// killWhen sends SIGKILL as soon as the counter shows the phase under way (or the load is over).
func (p *process) killWhen(t *testing.T, phase, metric string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := scrape(p.base); err == nil && m[metric] > 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
	t.Logf("killed while %s", phase)
}

// waitDone waits until the catalog holds every valid record and every change is published.
func (p *process) waitDone(t *testing.T, db *pgtest.DB, valid int) { waitDone(t, db, p, valid) }

// waitDone waits until p's API serves every valid record and no change waits; on failure it shows
// the logs of p and of the other processes.
func waitDone(t *testing.T, db *pgtest.DB, p *process, valid int, others ...*process) {
	t.Helper()
	logs := func() string {
		out := p.logs.String()
		for i, o := range others {
			out += fmt.Sprintf("\n--- process %d ---\n%s", i+2, o.logs.String())
		}
		return out
	}
	require.Eventually(t, func() bool {
		// The outbox's own count, not the relay's gauge: a relay that has not run yet in a new
		// process reports nothing, which reads as zero.
		backlog, err := changes.NewOutbox(db.Pool).Backlog(context.Background())
		if err != nil || backlog != 0 {
			return false
		}
		resp, err := http.Get("http://" + p.base + "/services?per_page=1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var page struct {
			TotalItems int `json:"total_items"`
		}
		return json.NewDecoder(resp.Body).Decode(&page) == nil && page.TotalItems == valid
	}, 120*time.Second, 20*time.Millisecond, "the hub never finished the load; logs:\n%s", logs())
	// Then quiet: entity resolution may still refine canonical records after the last service
	// appeared. Done is when no change has been appended for a while and none waits.
	outbox := changes.NewOutbox(db.Pool)
	last := int64(-1)
	require.Eventually(t, func() bool {
		n, err := outbox.Count(context.Background())
		backlog, berr := outbox.Backlog(context.Background())
		quiet := err == nil && berr == nil && n == last && backlog == 0
		last = n
		return quiet
	}, 120*time.Second, 1500*time.Millisecond, "the hub never went quiet; logs:\n%s", logs())
}

// stop asks the hub to shut down (SIGTERM) and waits for a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit after SIGTERM; logs:\n%s", p.logs.String())
	case <-time.After(30 * time.Second):
		require.FailNow(t, "hub did not stop within 30s of SIGTERM")
	}
}

func scrape(base string) (map[string]float64, error) {
	resp, err := http.Get("http://" + base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// syncWriter lets the child's stderr be collected while the test reads it.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
