package cases_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"socialhub/connectors"
	"socialhub/connectors/casestatus"
	"socialhub/internal/cases"
	"socialhub/internal/config"
	"socialhub/schemas"
)

// The casestatus kind reads a department's feed page by page; its records, applied as the resolve
// stage applies them, land in the history; a record of a case routed elsewhere is refused.
func TestPulledStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	p := b.addResident(t, snils, "Марьино", "ЮВАО", true)
	_, filed := b.apply(t, "Социальное обслуживание на дому", cases.ChannelWeb, map[string]any{"pseudonym": p})
	id := filed["id"].(string)
	t0 := b.clock.Now()
	b.clock.Add(5 * time.Hour)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := map[string]any{"events": []any{
			map[string]any{"id": 1, "application": id, "state": "ПРИНЯТО", "at": t0.Add(time.Hour).Format(time.RFC3339), "officer": "Петрова"},
		}, "next": "p2"}
		if r.URL.Query().Get("after") == "p2" {
			page = map[string]any{"events": []any{
				map[string]any{"id": 3, "application": id, "state": "under_review", "at": t0.Add(3 * time.Hour).Format(time.RFC3339), "officer": "Петрова"},
				map[string]any{"id": 2, "application": id, "state": "documents_complete", "at": t0.Add(2 * time.Hour).Format(time.RFC3339), "officer": "Петрова"},
				map[string]any{"id": 1, "application": id, "state": "ПРИНЯТО", "at": t0.Add(time.Hour).Format(time.RFC3339), "officer": "Петрова"},
				map[string]any{"application": id, "state": "closed"},
			}}
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	var opts yaml.Node
	require.NoError(t, opts.Encode(map[string]any{
		"url": srv.URL, "organization": "tcso-marino", "items": "/events", "cursor_pointer": "/next", "cursor_param": "after",
		"statuses": map[string]any{"ПРИНЯТО": "received"},
		"fields":   map[string]any{"application_id": "/application", "event_id": "/id", "status": "/state", "occurred_at": "/at", "actor": "/officer"},
	}))
	src, err := casestatus.New(config.Source{Name: "tcso-marino-events", Kind: casestatus.KindName, Options: opts}, connectors.Deps{})
	require.NoError(t, err)
	require.NoError(t, src.Open(ctx, nil))
	var recs []cases.Record
	var rejected int
	for {
		r, err := src.Read(ctx)
		if errors.Is(err, connectors.ErrEndOfInput) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, schemas.EntityApplicationEvent, r.EntityType)
		if len(r.Reasons) > 0 {
			rejected++ // the runner sends it to dlq with its reasons
			continue
		}
		recs = append(recs, cases.Record{Source: "tcso-marino-events", Data: r.Data})
	}
	require.NoError(t, src.Close(ctx))
	require.Equal(t, 1, rejected)
	require.Len(t, recs, 4)

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	chs, err := b.store.ApplyRecords(ctx, tx, recs)
	require.NoError(t, err)
	require.Len(t, chs, 3, "the event read twice is recorded once")
	require.NoError(t, tx.Commit(ctx))
	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	var got []string
	for _, h := range c.History {
		got = append(got, h.Status)
	}
	require.Equal(t, []string{"submitted", "received", "documents_complete", "under_review"}, got)
	require.Equal(t, "tcso-marino-events", c.History[1].ReportedBy)

	// A record for a case routed to another organization belongs in dlq.
	tx, err = b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.store.ApplyRecords(ctx, tx, []cases.Record{{Source: "tcso-yuvao-events", Data: json.RawMessage(fmt.Sprintf(
		`{"application_id":%q,"organization":"tcso-yuvao","event_id":"9","status":"closed","occurred_at":%q,"actor":"X"}`,
		id, t0.Add(4*time.Hour).Format(time.RFC3339)))}})
	require.ErrorIs(t, err, cases.ErrInvalidRecord)
}
