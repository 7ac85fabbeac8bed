package hub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/residents"
	"socialhub/internal/api"
	"socialhub/internal/catalog"
	"socialhub/internal/config"
	"socialhub/internal/eligibility"
	"socialhub/internal/hub"
	"socialhub/internal/hubtest"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
)

// TestDemoRunsEverySource is `make run`'s promise: with --demo the hub loads a department list, a
// residents' registry table and a department HSDS feed, and reports every demo source with its
// counts.
func TestDemoRunsEverySource(t *testing.T) {
	h := hubtest.StartDemo(t, hubtest.Options{})
	db, addrs := h.DB, h.Addrs

	var status struct {
		Sources []api.SourceStatus `json:"sources"`
	}
	want := map[string]int64{hub.DemoSourceName: 246, hub.DemoResidentsSource: 20000, hub.DemoFeedSource: 36,
		hub.DemoFPGGrantsSource: 84, hub.DemoCityGrants: 84}
	require.Eventually(t, func() bool {
		if getJSON(t, addrs.HTTP, "/v1/sources", &status) != http.StatusOK || len(status.Sources) != len(want) {
			return false
		}
		for _, s := range status.Sources {
			if s.LastRun == nil || s.LastRun.Status != connectors.RunOK || s.LastRun.Read != want[s.Name] {
				return false
			}
		}
		return true
	}, 90*time.Second, 100*time.Millisecond, "every demo source completes its first run: %+v", &status)

	// Residents land in the eligibility store under pseudonyms; the feed's services in the catalog.
	store := eligibility.NewStore(db.Pool)
	require.Eventually(t, func() bool {
		n, err := store.Count(context.Background())
		return err == nil && n == 20000
	}, 60*time.Second, 100*time.Millisecond)
	// Every valid record of the department list and the feed is backed in the catalog; the feed's
	// services that the department also lists are merged into one canonical service each.
	cat := catalog.NewStore(db.Pool)
	require.Eventually(t, func() bool {
		dept, err1 := cat.SourceRecordIDs(context.Background(), hub.DemoSourceName)
		feed, err2 := cat.SourceRecordIDs(context.Background(), hub.DemoFeedSource)
		return err1 == nil && err2 == nil && len(dept) == 240 && len(feed) == 34
	}, 60*time.Second, 100*time.Millisecond)
	var list page
	require.Equal(t, http.StatusOK, getJSON(t, addrs.HTTP, "/services?per_page=1", &list))
	require.Less(t, list.TotalItems, 240+34, "services listed by both sources are one canonical service")
	require.Greater(t, list.TotalItems, 200, "services that are not the same stay apart")
}

// TestBadSourceStopsStart: a residents source without the pseudonym key stops the hub at start,
// naming the source and the variable, instead of failing at its first run.
func TestBadSourceStopsStart(t *testing.T) {
	db := pgtest.NewDB(t, hub.Migrations()...)
	kc := kafkatest.New(t, 1)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = db.URL
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Brokers = kc.Config.Brokers
	src, err := config.NewSource("registry", "residents", "", map[string]any{
		"mode": "table", "dsn": "postgres://x@127.0.0.1:1/registry", "table": "registry_residents"})
	require.NoError(t, err)
	cfg.Sources = []config.Source{src}
	require.NoError(t, cfg.Validate())
	err = hub.Run(context.Background(), cfg, hub.Options{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: connectors.NewRegistry(residents.Kind()),
		Getenv:   func(string) string { return "" },
	})
	require.ErrorContains(t, err, `source "registry"`)
	require.ErrorContains(t, err, "SOCIALHUB_PSEUDONYM_KEY")
}
