package casestatus_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/casestatus"
	"socialhub/connectors/connectortest"
	"socialhub/internal/config"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// feed is a department's event feed: pages of three events chained by a cursor; one event has
// no status, which the kind rejects with its reason.
type feed struct{ broken atomic.Bool }

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.broken.Load() {
		http.Error(w, "сервис недоступен", http.StatusServiceUnavailable)
		return
	}
	page := 0
	if after := r.URL.Query().Get("after"); after != "" {
		_, _ = fmt.Sscanf(after, "p%d", &page)
	}
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var events []any
	for i := page * 3; i < page*3+3 && i < 10; i++ {
		e := map[string]any{"id": i + 1, "application": fmt.Sprintf("app-%d", i%4), "state": "ПРИНЯТО",
			"at": at.Add(time.Duration(i) * time.Hour).Format(time.RFC3339), "officer": "Петрова"}
		if i == 7 {
			delete(e, "state")
		}
		events = append(events, e)
	}
	out := map[string]any{"events": events}
	if page*3+3 < 10 {
		out["next"] = fmt.Sprintf("p%d", page+1)
	}
	_ = json.NewEncoder(w).Encode(out)
}

func TestAcceptance(t *testing.T) {
	t.Parallel()
	type input struct {
		feed *feed
		url  string
	}
	// Each suite subtest its own feed, so one that breaks it changes nothing another reads.
	inputs := &connectortest.PerSubtest[input]{Build: func() input {
		f := &feed{}
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		return input{feed: f, url: srv.URL}
	}}
	connectortest.Run(t, connectortest.Fixture{
		New: func(t *testing.T) connectors.Source {
			u := inputs.Get(t).url
			cfg, err := config.NewSource("tcso-marino-events", casestatus.KindName, "", map[string]any{
				"url": u, "organization": "tcso-marino", "items": "/events", "cursor_pointer": "/next", "cursor_param": "after",
				"statuses": map[string]any{"ПРИНЯТО": "received"}, "rate_limit": -1,
				"fields": map[string]any{"application_id": "/application", "event_id": "/id", "status": "/state", "occurred_at": "/at", "actor": "/officer"},
			})
			require.NoError(t, err)
			src, err := casestatus.New(cfg, connectors.Deps{})
			require.NoError(t, err)
			return src
		},
		Want:     10,
		Rejected: 1,
		Break:    func(t *testing.T) { inputs.Get(t).feed.broken.Store(true) },
	})
}
