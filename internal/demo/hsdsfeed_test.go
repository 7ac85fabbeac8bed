package demo_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/hsds"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/schemas"
)

func get(t *testing.T, h http.Handler, target string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	b, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, b
}

func TestHSDSFeedDeterministic(t *testing.T) {
	t.Parallel()
	a, b := demo.HSDSFeed(demo.HSDSFeedOptions{Seed: 5}), demo.HSDSFeed(demo.HSDSFeedOptions{Seed: 5})
	other := demo.HSDSFeed(demo.HSDSFeedOptions{Seed: 6})
	for _, target := range []string{"/", "/services", "/services?page=2&per_page=7&full=true", "/services?modified_after=2026-11-02T20:00:00Z"} {
		codeA, bodyA := get(t, a, target)
		codeB, bodyB := get(t, b, target)
		require.Equal(t, http.StatusOK, codeA, target)
		require.Equal(t, codeA, codeB)
		require.Equal(t, bodyA, bodyB, target)
	}
	_, x := get(t, a, "/services?full=true")
	_, y := get(t, other, "/services?full=true")
	require.NotEqual(t, x, y, "another seed, another world")
}

func TestHSDSFeedPagingAndFilters(t *testing.T) {
	t.Parallel()
	h := demo.HSDSFeed(demo.HSDSFeedOptions{})
	man := demo.HSDSFeedManifest(demo.HSDSFeedOptions{})
	total := len(man.Valid) + len(man.Broken)
	require.GreaterOrEqual(t, len(man.Valid), 25)
	require.Len(t, man.Broken, demo.DefaultHSDSBroken)

	type pageT struct {
		TotalItems int               `json:"total_items"`
		TotalPages int               `json:"total_pages"`
		PageNumber int               `json:"page_number"`
		LastPage   bool              `json:"last_page"`
		Contents   []json.RawMessage `json:"contents"`
	}
	var ids []string
	for n := 1; ; n++ {
		code, body := get(t, h, "/services?per_page=8&page="+itoa(n))
		require.Equal(t, http.StatusOK, code)
		var p pageT
		require.NoError(t, json.Unmarshal(body, &p))
		require.Equal(t, total, p.TotalItems)
		require.Equal(t, n, p.PageNumber)
		for _, c := range p.Contents {
			var s map[string]any
			require.NoError(t, json.Unmarshal(c, &s))
			require.NotContains(t, s, "service_at_locations", "without full=true a listing has one-to-one fields only")
			ids = append(ids, s["id"].(string))
		}
		if p.LastPage {
			require.Equal(t, p.TotalPages, n)
			break
		}
	}
	require.Len(t, ids, total)

	// /services/{id} is the fully nested service.
	code, body := get(t, h, "/services/"+ids[0])
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"service_at_locations"`)
	code, _ = get(t, h, "/services/no-such-id")
	require.Equal(t, http.StatusNotFound, code)

	// modified_after keeps the later services.
	var p pageT
	_, body = get(t, h, "/services?per_page=100&modified_after=2026-11-02T20:00:00Z")
	require.NoError(t, json.Unmarshal(body, &p))
	require.Less(t, p.TotalItems, total)
	require.Positive(t, p.TotalItems)
	code, _ = get(t, h, "/services?modified_after=вчера")
	require.Equal(t, http.StatusBadRequest, code)
}

func itoa(n int) string { return strconv.Itoa(n) }

// The feed read by the hsds kind gives records the profile accepts, except the broken ones, each
// rejected for the field the manifest names.
func TestHSDSFeedPassesKindAndProfile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(demo.HSDSFeed(demo.HSDSFeedOptions{}))
	defer srv.Close()
	cfg, err := config.NewSource("trud", "hsds", "", map[string]any{"base_url": srv.URL, "per_page": 9, "rate_limit": -1})
	require.NoError(t, err)
	src, err := hsds.New(cfg, connectors.Deps{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, src.Open(ctx, nil))
	defer src.Close(ctx)
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	man := demo.HSDSFeedManifest(demo.HSDSFeedOptions{})
	broken := map[string]string{}
	for _, b := range man.Broken {
		broken[b.ID] = b.Field
	}
	n := 0
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, connectors.ErrEndOfInput) {
			break
		}
		require.NoError(t, err)
		require.Empty(t, rec.Reasons)
		n++
		viol, err := v.Validate(rec.EntityType, rec.Data)
		require.NoError(t, err)
		if field, ok := broken[rec.ExternalID]; ok {
			require.Len(t, viol, 1, "%s: %v", rec.ExternalID, viol)
			require.Equal(t, field, viol[0].Field)
			continue
		}
		require.Empty(t, viol, "%s: %s", rec.ExternalID, rec.Data)
	}
	require.Equal(t, len(man.Valid)+len(man.Broken), n)
}

// The truth rows name the department CSV's own ids for the institutions and points both describe.
func TestHSDSFeedTruthAgreesWithDepartmentCSV(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	_, err := demo.WriteDepartmentCSV(&buf, demo.Options{})
	require.NoError(t, err)
	r := csv.NewReader(&buf)
	r.Comma = ';'
	rows, err := r.ReadAll()
	require.NoError(t, err)
	orgIDs, locIDs := map[string]bool{}, map[string]bool{}
	for _, row := range rows[1:] {
		orgIDs[row[1]] = true
		locIDs[row[1]+"/loc/"+row[9]] = true
	}

	truth, err := demo.HSDSFeedTruth(demo.HSDSFeedOptions{}, demo.Options{}, "trud", "dszn")
	require.NoError(t, err)
	byTruth := map[string][]demo.TruthRow{}
	for _, row := range truth {
		byTruth[row.TruthID] = append(byTruth[row.TruthID], row)
		if row.Source == "dszn" {
			switch row.EntityType {
			case "organization":
				require.True(t, orgIDs[row.ExternalID], row.ExternalID)
			case "location":
				require.True(t, locIDs[row.ExternalID], row.ExternalID)
			}
		}
	}
	shared := map[string]int{}
	for _, rows := range byTruth {
		if len(rows) == 2 {
			require.NotEqual(t, rows[0].Source, rows[1].Source)
			shared[rows[0].EntityType]++
		}
	}
	require.GreaterOrEqual(t, shared["organization"], 4, "employment centres, psychological help and two ТЦСО are in both")
	require.GreaterOrEqual(t, shared["location"], 6)

	// The feed spells shared institutions its own way.
	_, body := get(t, demo.HSDSFeed(demo.HSDSFeedOptions{}), "/services?full=true&per_page=100")
	require.Contains(t, string(body), "Государственное бюджетное учреждение города Москвы «Территориальный центр социального обслуживания")
	require.Contains(t, string(body), `"ГБУ МСППН"`)
	require.Contains(t, string(body), `"number":"+7`)
	require.Contains(t, string(body), `"number":"8 (`)
	require.Contains(t, string(body), `"RU-INN"`)

	_, err = demo.HSDSFeedTruth(demo.HSDSFeedOptions{Seed: 2}, demo.Options{Seed: 3}, "trud", "dszn")
	require.ErrorIs(t, err, demo.ErrBadOptions)

	points, err := demo.DepartmentPoints(demo.Options{})
	require.NoError(t, err)
	for _, p := range points {
		require.True(t, locIDs[p.LocationID])
	}
}
