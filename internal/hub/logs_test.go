package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/api"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/eligibility"
	"socialhub/internal/hub"
	"socialhub/internal/hubtest"
)

// lockedBuffer is a log sink the test can read while the hub writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// demoResidents and demoSeed are what the demo loads (hub/demo.go).
const (
	demoResidents = 20000
	demoSeed      = 1
)

// TestLogsCarryNoPersonalData runs the demo — 20 000 residents through the pipeline — with JSON
// logs at debug level, calls the API with a national id in the query string, and then searches
// the whole log for personal data: СНИЛС in either spelling, the residents' names, phones and
// passport numbers. It also scrapes /metrics of the running hub for every stage's throughput,
// lag, errors, DLQ size and webhook backlog.
func TestLogsCarryNoPersonalData(t *testing.T) {
	logs := &lockedBuffer{}
	h := hubtest.StartDemo(t, hubtest.Options{
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Tune:   func(c *config.Config) { c.Log = config.Log{Level: "debug", Format: "json"} },
	})
	db, addrs, stop := h.DB, h.Addrs, h.Stop
	cfg := struct{ DataDir string }{h.DataDir}

	// The demo load: every source's first run completes and the residents land.
	var status struct {
		Sources []api.SourceStatus `json:"sources"`
	}
	require.Eventually(t, func() bool {
		if getJSON(t, addrs.HTTP, "/v1/sources", &status) != http.StatusOK || len(status.Sources) == 0 {
			return false
		}
		for _, s := range status.Sources {
			if s.LastRun == nil || s.LastRun.Status != connectors.RunOK {
				return false
			}
		}
		return true
	}, 120*time.Second, 200*time.Millisecond)
	store := eligibility.NewStore(db.Pool)
	require.Eventually(t, func() bool {
		n, err := store.Count(context.Background())
		return err == nil && n == demoResidents
	}, 90*time.Second, 100*time.Millisecond)

	people := demo.Residents(demoResidents, demoSeed)
	// API calls carrying personal data in the query string and in the path, as a careless client
	// sends them (a national id where the pseudonym belongs).
	snils := people[0].SNILS
	for _, path := range []string{
		"/services?q=" + url.QueryEscape(snils),
		"/v1/residents/" + url.PathEscape(people[2].SNILS) + "/eligible-services",
		"/services/" + url.PathEscape(people[3].LastName),
		"/services?per_page=1&search=" + url.QueryEscape(people[1].LastName+" "+people[1].FirstName) + "&snils=" + strings.NewReplacer("-", "", " ", "").Replace(snils),
	} {
		resp, err := http.Get("http://" + addrs.HTTP + path)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// Metrics of the running hub: each stage's throughput, lag, errors, the DLQ and webhooks.
	scrape := func() string {
		resp, err := http.Get("http://" + addrs.HTTP + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	wantMetrics := []string{
		// throughput
		`socialhub_records_out_total{outcome="produced",stage="connector"}`,
		`socialhub_records_in_total{stage="validate"}`,
		`socialhub_records_out_total{outcome="valid",stage="validate"}`,
		`socialhub_records_out_total{outcome="rejected",stage="validate"}`,
		`socialhub_records_in_total{stage="resolve"}`,
		`socialhub_records_out_total{outcome="applied",stage="resolve"}`,
		`socialhub_records_out_total{outcome="published",stage="relay"}`,
		`socialhub_connector_runs_total{result="ok",source="` + hub.DemoResidentsSource + `"}`,
		// lag
		`socialhub_consumer_lag{partition="all",stage="validate"}`,
		`socialhub_consumer_lag{partition="0",stage="resolve"}`,
		`socialhub_consumer_lag{partition="all",stage="dlq"}`,
		`socialhub_outbox_backlog `,
		// errors
		`socialhub_stage_errors_total{stage="connector"}`,
		`socialhub_stage_errors_total{stage="resolve"}`,
		`socialhub_stage_errors_total{stage="relay"}`,
		`socialhub_stage_errors_total{stage="webhooks"}`,
		`socialhub_stage_errors_total{stage="dlq"}`,
		// DLQ size and webhook backlog
		`socialhub_dlq_open{source="` + hub.DemoSourceName + `"}`,
		`socialhub_webhook_backlog `,
	}
	require.Eventually(t, func() bool {
		body := scrape()
		for _, m := range wantMetrics {
			if !strings.Contains(body, m) {
				t.Logf("not yet on /metrics: %s", m)
				return false
			}
		}
		return true
	}, 30*time.Second, 500*time.Millisecond)

	stop()
	// The test's own temporary directory carries random digits that could pass for an id.
	text := strings.ReplaceAll(logs.String(), cfg.DataDir, "<data_dir>")
	require.NotEmpty(t, text)
	// Every line is a JSON object: the collector can parse all of it.
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	lines := 0
	for sc.Scan() {
		var obj map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &obj), "a log line that is not JSON: %s", sc.Text())
		lines++
	}
	require.NoError(t, sc.Err())
	t.Logf("%d log lines, %d bytes", lines, len(text))

	leak := func(what, found string) {
		i := strings.Index(text, found)
		start, end := max(0, i-200), min(len(text), i+len(found)+200)
		require.Failf(t, "personal data in the logs", "%s %q in: …%s…", what, found, text[start:end])
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`\d{3}-\d{3}-\d{3} \d{2}`),          // СНИЛС as printed
		regexp.MustCompile(`(?:^|[^\d.:])(\d{11})(?:[^\d]|$)`), // СНИЛС as 11 digits
		regexp.MustCompile(`\b\d{2} \d{2} \d{6}\b`),            // passport series and number
		regexp.MustCompile(`\+7 \(\d{3}\) \d{3}-\d{2}-\d{2}`),  // a resident's phone, as the registry writes it
	} {
		if m := re.FindString(text); m != "" {
			leak("pattern "+re.String(), m)
		}
	}
	// Names, phones and passports of the demo's residents, as whole words. First names are common
	// words in services' names ("Вера", "Надежда"), so they count only next to the surname.
	for _, p := range people {
		for _, v := range []string{p.LastName + " " + p.FirstName, p.FirstName + " " + p.LastName, p.Phone, p.Passport, p.SNILS} {
			if v != "" && strings.Contains(text, v) {
				leak("resident's data", v)
			}
		}
	}
	surnames := map[string]bool{}
	for _, p := range people {
		surnames[p.LastName] = true
	}
	words := regexp.MustCompile(`[А-ЯЁ][а-яё]+`).FindAllString(text, -1)
	for _, w := range words {
		if surnames[w] {
			leak("a resident's surname", w)
		}
	}
}
