package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/csv"
	"socialhub/internal/api"
	"socialhub/internal/catalog"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const sourceName = "dszn-test"

// running is a hub started by a test.
type running struct {
	addrs hub.Addrs
	stop  func() error
}

// startHub runs the hub on the test's database and Kafka cluster with one csv source reading path.
func startHub(t *testing.T, db *pgtest.DB, kc *kafkatest.Cluster, path string) running {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = db.URL
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Brokers = kc.Config.Brokers
	cfg.Kafka.TopicPrefix = event.DefaultPrefix
	cfg.Kafka.Partitions = 3
	cfg.Pipeline.BatchSize = 50 // several batches, even for a small file
	src, err := hub.CSVSource(sourceName, path, "@every 1h")
	require.NoError(t, err)
	cfg.Sources = []config.Source{src}
	require.NoError(t, cfg.Validate())

	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan hub.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- hub.Run(ctx, cfg, hub.Options{
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registry: connectors.NewRegistry(csv.Kind()),
			Started:  func(a hub.Addrs) { started <- a },
			// One hub at a time, as `socialhub run`: it takes the connectors' lease over and says
			// it is running once its scheduler takes requests.
			SingleProcess: true,
		})
	}()
	var r running
	select {
	case r.addrs = <-started:
	case err := <-done:
		cancel()
		require.FailNow(t, "hub stopped before serving", "%v", err)
	case <-time.After(60 * time.Second):
		cancel()
		require.FailNow(t, "hub did not start within a minute")
	}
	stopped := false
	r.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("hub did not shut down within 30s")
		}
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func getJSON(t *testing.T, base, path string, out any) int {
	t.Helper()
	resp, err := http.Get("http://" + base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

type page struct {
	TotalItems int              `json:"total_items"`
	TotalPages int              `json:"total_pages"`
	Contents   []map[string]any `json:"contents"`
}

// TestDepartmentFileEndToEnd is the walking skeleton's promise: a department's file with valid and
// broken rows goes in; the API serves exactly the valid ones, dlq holds exactly the broken ones with
// their reasons, and every record read is accounted for.
func TestDepartmentFileEndToEnd(t *testing.T) {
	db := pgtest.NewDB(t, hub.Migrations()...)
	kc := kafkatest.New(t, 3)
	path := filepath.Join(t.TempDir(), "department.csv")
	f, err := os.Create(path)
	require.NoError(t, err)
	man, err := demo.WriteDepartmentCSVWindows1251(f, demo.Options{Seed: 7, Rows: 60})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Len(t, man.Valid, 60)
	require.NotEmpty(t, man.Broken)
	total := len(man.Valid) + len(man.Broken)

	h := startHub(t, db, kc, path)
	base := h.addrs.HTTP

	// Every broken row reaches dlq, every valid one the catalog.
	dlq := kc.WaitCount(t, kc.Topics.DLQ, len(man.Broken), 60*time.Second)
	var list page
	require.Eventually(t, func() bool {
		return getJSON(t, base, "/services?per_page=1", &list) == http.StatusOK && list.TotalItems == len(man.Valid)
	}, 60*time.Second, 50*time.Millisecond, "the API never served all %d valid services", len(man.Valid))

	// The catalog holds exactly the valid rows.
	cat := catalog.NewStore(db.Pool)
	ids, err := cat.SourceRecordIDs(context.Background(), sourceName)
	require.NoError(t, err)
	require.Equal(t, sorted(man.Valid), ids)

	// dlq holds exactly the broken rows, each with the field that is wrong among its reasons.
	require.Len(t, dlq, len(man.Broken), "dlq holds more than the broken rows")
	reasons := map[string][]event.Reason{}
	for _, m := range dlq {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		require.Equal(t, event.DeadLetterType("validate"), ev.Type)
		var dl event.DeadLetter
		require.NoError(t, json.Unmarshal(ev.Data, &dl))
		require.Equal(t, kc.Topics.Raw, dl.Topic)
		require.NotEmpty(t, dl.Original, "the original record travels with its reasons")
		reasons[string(m.Key)] = dl.Reasons
	}
	for _, b := range man.Broken {
		key := event.Key(sourceName, b.ID)
		rs, ok := reasons[key]
		require.True(t, ok, "broken row %s (%s) is not on dlq; dlq keys: %v", b.ID, b.Why, keys(reasons))
		var fields []string
		for _, r := range rs {
			require.NotEmpty(t, r.Message)
			fields = append(fields, r.Field)
		}
		require.Contains(t, fields, b.Field, "row %s: %s", b.ID, b.Why)
	}

	// Records in = catalog + dlq, on the topics and in the counters.
	raw := kc.ReadAll(t, kc.Topics.Raw)
	require.Len(t, raw, total)
	valid := kc.ReadAll(t, kc.Topics.Valid)
	require.Equal(t, total, len(valid)+len(dlq))
	metrics := scrape(t, base)
	require.Equal(t, float64(total), metrics[`socialhub_records_in_total{stage="validate"}`])
	require.Equal(t, float64(len(man.Valid)), metrics[`socialhub_records_out_total{outcome="valid",stage="validate"}`])
	require.Equal(t, float64(len(man.Broken)), metrics[`socialhub_records_out_total{outcome="rejected",stage="validate"}`])
	require.Equal(t, float64(len(man.Valid)), metrics[`socialhub_records_out_total{outcome="applied",stage="resolve"}`])
	require.Equal(t, float64(1), metrics[`socialhub_connector_runs_total{result="ok",source="dszn-test"}`])

	// HSDS shapes: a service in full, with its organization, locations, address, phones and schedules.
	require.Equal(t, http.StatusOK, getJSON(t, base, "/services?per_page=100", &list))
	require.Len(t, list.Contents, len(man.Valid))
	var svc map[string]any
	require.Equal(t, http.StatusOK, getJSON(t, base, "/services/"+list.Contents[0]["id"].(string), &svc))
	require.NotEmpty(t, svc["organization"].(map[string]any)["name"])
	sals := svc["service_at_locations"].([]any)
	require.NotEmpty(t, sals)
	loc := sals[0].(map[string]any)["location"].(map[string]any)
	require.NotEmpty(t, loc["addresses"])
	require.NotEmpty(t, svc["phones"])
	require.NotEmpty(t, svc["schedules"])

	// Russian full text finds the family-mediation services, most relevant first.
	var found page
	require.Equal(t, http.StatusOK, getJSON(t, base, "/services?search="+url.QueryEscape("медиация"), &found))
	require.NotEmpty(t, found.Contents, "the demo list has family-mediation services")
	require.Contains(t, strings.ToLower(found.Contents[0]["name"].(string)), "медиац")
	var mediation page
	require.Equal(t, http.StatusOK, getJSON(t, base, "/services?per_page=100&taxonomy_term_id=family-mediation", &mediation))
	require.NotEmpty(t, mediation.Contents)
	foundIDs := map[string]bool{}
	for _, s := range found.Contents {
		foundIDs[s["id"].(string)] = true
	}
	for _, s := range mediation.Contents {
		require.True(t, foundIDs[s["id"].(string)], "search misses mediation service %s", s["name"])
	}

	// The changes went out: the outbox is drained onto the changes topic.
	require.Eventually(t, func() bool { return scrape(t, base)["socialhub_outbox_backlog"] == 0 },
		30*time.Second, 50*time.Millisecond)
	require.NotEmpty(t, kc.ReadAll(t, kc.Topics.Changes))

	require.NoError(t, h.stop(), "clean shutdown")
}

// TestRestartRepeatsNothing runs the same file through a second hub process on the same database
// and Kafka: the source resumes from its checkpoint, so nothing is read, applied or rejected twice.
func TestRestartRepeatsNothing(t *testing.T) {
	db := pgtest.NewDB(t, hub.Migrations()...)
	kc := kafkatest.New(t, 3)
	path := filepath.Join(t.TempDir(), "department.csv")
	f, err := os.Create(path)
	require.NoError(t, err)
	man, err := demo.WriteDepartmentCSV(f, demo.Options{Seed: 3, Rows: 30, Broken: 2})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	h := startHub(t, db, kc, path)
	kc.WaitCount(t, kc.Topics.DLQ, len(man.Broken), 60*time.Second)
	var list page
	require.Eventually(t, func() bool {
		return getJSON(t, h.addrs.HTTP, "/services?per_page=1", &list) == http.StatusOK && list.TotalItems == len(man.Valid)
	}, 60*time.Second, 50*time.Millisecond)
	require.NoError(t, h.stop())
	rawBefore := len(kc.ReadAll(t, kc.Topics.Raw))

	h = startHub(t, db, kc, path)
	// The source completed its run: a restart does not run it again until its schedule says so.
	var status struct {
		Sources []api.SourceStatus `json:"sources"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, h.addrs.HTTP, "/v1/sources", &status))
	require.Len(t, status.Sources, 1)
	st := status.Sources[0]
	require.Equal(t, sourceName, st.Name)
	require.NotNil(t, st.LastRun)
	require.Equal(t, connectors.RunOK, st.LastRun.Status)
	require.Equal(t, int64(len(man.Valid)+len(man.Broken)), st.LastRun.Read)
	require.NotNil(t, st.NextRun)
	require.NotNil(t, st.Cursor)
	// What validation made of the source: read, valid, rejected by field, catalog shares.
	q, ok := st.Quality.(map[string]any)
	require.True(t, ok, "quality figures of the source: %v", st.Quality)
	require.Equal(t, float64(len(man.Valid)+len(man.Broken)), q["read"])
	require.Equal(t, float64(len(man.Broken)), q["rejected"])
	require.NotEmpty(t, q["rejected_by_field"])
	require.Contains(t, q["catalog"].(map[string]any)["share"], "phone")

	// Run it now through the API: it resumes from its checkpoint and produces nothing. The hub
	// says it is running only once its scheduler takes requests: no 503 right after a start.
	resp, err := http.Post("http://"+h.addrs.HTTP+"/v1/sources/"+sourceName+"/runs", "", nil)
	require.NoError(t, err)
	var run api.RunView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&run))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, connectors.TriggerManual, run.Trigger)
	require.Eventually(t, func() bool {
		var r api.RunView
		return getJSON(t, h.addrs.HTTP, fmt.Sprintf("/v1/sources/%s/runs/%d", sourceName, run.ID), &r) == http.StatusOK && r.Status == connectors.RunOK
	}, 60*time.Second, 50*time.Millisecond)
	resp, err = http.Post("http://"+h.addrs.HTTP+"/v1/sources/no-such-source/runs", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Len(t, kc.ReadAll(t, kc.Topics.Raw), rawBefore)
	require.Len(t, kc.ReadAll(t, kc.Topics.DLQ), len(man.Broken))
	require.Equal(t, http.StatusOK, getJSON(t, h.addrs.HTTP, "/services?per_page=1", &list))
	require.Equal(t, len(man.Valid), list.TotalItems)
	require.NoError(t, h.stop())
}

// scrape reads the hub's Prometheus metrics as "name{labels}" → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
