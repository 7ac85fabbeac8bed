package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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

// scaleOutRows is the ingest size of the scale-out test; SOCIALHUB_SCALEOUT_ROWS raises it for the
// full run of `make faults`.
func scaleOutRows(t *testing.T) int {
	if v := os.Getenv("SOCIALHUB_SCALEOUT_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return n
	}
	return 4000
}

// TestScaleOut is the promise of `socialhub serve`: three hub processes with overlapping roles
// against a three-broker cluster and one PostgreSQL share an ingest; one of them is killed in the
// middle, the others take over its partitions and the connectors' lease, and the catalog ends
// complete, with nothing doubled, every broken row on dlq and every change published.
func TestScaleOut(t *testing.T) {
	rows := scaleOutRows(t)
	file := filepath.Join(t.TempDir(), "department.csv")
	f, err := os.Create(file)
	require.NoError(t, err)
	man, err := demo.WriteDepartmentCSV(f, demo.Options{Seed: 21, Rows: rows, Broken: 10})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Brokers: 3})
	require.NoError(t, err)
	t.Cleanup(emb.Close)
	db := pgtest.NewDB(t, hub.Migrations()...)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "socialhub.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`http:
  addr: 127.0.0.1:0
kafka:
  partitions: 6
pipeline:
  batch_size: 100
  session_timeout: 6s  # the brokers' group.min.session.timeout.ms is 6s by default
connectors:
  lease_ttl: 2s
log:
  level: info
  format: json
sources:
  - name: dszn
    kind: csv
    schedule: "@every 1h"
    options:
      path: %s
`, file)), 0o644))
	env := []string{"DATABASE_URL=" + db.URL, "SOCIALHUB_KAFKA_BROKERS=" + strings.Join(emb.Addrs(), ",")}

	// Three processes, every role twice: A and B can both run the connectors (one holds the lease).
	a := startServe(t, cfgPath, env, "connectors,validate,resolve")
	b := startServe(t, cfgPath, env, "connectors,validate,resolve,relay")
	c := startServe(t, cfgPath, env, "api,relay,validate,resolve")

	// Kill A as soon as the ingest is under way in it (it started first: it holds the lease).
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m, err := scrape(a.base); err == nil && m[`socialhub_records_out_total{outcome="produced",stage="connector"}`] > 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	_ = a.cmd.Wait()

	// B takes the lease over and finishes reading; B and C take A's partitions; C serves the API.
	waitDone(t, db, c, len(man.Valid), a, b)
	ctx := context.Background()
	ids, err := catalog.NewStore(db.Pool).SourceRecordIDs(ctx, "dszn")
	require.NoError(t, err)
	require.Equal(t, sorted(man.Valid), ids, "every valid row is in the catalog, once")
	require.Eventually(t, func() bool {
		n, err := changes.NewOutbox(db.Pool).Backlog(ctx)
		return err == nil && n == 0
	}, 60*time.Second, 50*time.Millisecond, "every change published")

	// Nothing doubled: one 'created' change per service, whatever was replayed after the kill.
	kc := kafkatest.Attach(t, emb, 6)
	created := map[string]int{}
	for _, m := range kc.ReadAll(t, kc.Topics.Changes) {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		if ev.Type == event.Type("catalog", "service", "created") {
			created[ev.Subject]++
		}
	}
	require.Len(t, created, len(man.Valid))
	for id, n := range created {
		require.Equal(t, 1, n, "service %s created %d times", id, n)
	}
	// No record lost: every broken row is on dlq.
	dead := map[string]bool{}
	for _, m := range kc.ReadAll(t, kc.Topics.DLQ) {
		dead[string(m.Key)] = true
	}
	for _, br := range man.Broken {
		require.True(t, dead[event.Key("dszn", br.ID)], "broken row %s is on dlq", br.ID)
	}
	// The survivors took over the lease: B's logs say so.
	require.Contains(t, b.logs.String(), "holding the lease")
	b.stop(t)
	c.stop(t)
}

var httpLine = regexp.MustCompile(`(?:API|HTTP):\s+http://([^/\s]+)/`)

// startServe starts `socialhub serve --roles=...` as a child process.
func startServe(t *testing.T, cfgPath string, env []string, roles string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath, "--roles", roles)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	return startProcess(t, cmd)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
