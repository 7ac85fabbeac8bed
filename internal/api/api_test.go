package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"socialhub/internal/api"
	"socialhub/internal/catalog"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const src = "dszn-points"

type testBundle struct {
	srv   *api.Server
	reg   *prometheus.Registry
	logs  *syncBuffer
	ready error
	mu    sync.Mutex
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := pgtest.NewDB(t, catalog.Migrations())
	store := catalog.NewStore(db.Pool)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = store.Apply(ctx, tx, []catalog.Record{
		record(t, "DSZN-1", "Семейная медиация", "Помощь медиатора при конфликтах в семье", "ORG-12", `ГБУ ТЦСО "Марьино"`, "family-mediation"),
		record(t, "DSZN-2", "Психологическая консультация", "Помощь психолога", "ORG-12", `ГБУ ТЦСО "Марьино"`, "psych-individual"),
		record(t, "DSZN-3", "Комната обогрева", "Обогрев и горячее питание", "ORG-13", "ГБУ ЦСА «Люблино»", "cooling-rooms"),
	})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	b := &testBundle{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	b.srv = api.New(api.Options{
		Catalog: store, Logger: slog.New(slog.NewJSONHandler(b.logs, nil)),
		Gatherer: b.reg, Registerer: b.reg, Version: "v1.2.3",
		Ready: func(context.Context) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.ready
		},
	})
	return b
}

func record(t *testing.T, id, name, description, orgID, orgName, term string) catalog.Record {
	t.Helper()
	doc := map[string]any{
		"id": id, "name": name, "description": description, "status": "active",
		"organization": map[string]any{"id": orgID, "name": orgName},
		"phones":       []any{map[string]any{"id": id + "/phone/0", "number": "+7 (495) 123-45-67"}},
		"attributes":   []any{map[string]any{"id": id + "/attr/0", "taxonomy_term_id": term}},
		"service_at_locations": []any{map[string]any{"id": id + "/sal/0", "location": map[string]any{
			"id": orgID + "/loc/0", "location_type": "physical", "name": "Филиал",
			"addresses": []any{map[string]any{"id": orgID + "/loc/0/addr", "address_1": "ул. Братиславская, д. 14",
				"city": "Москва", "country": "RU", "address_type": "physical", "district": "Марьино", "okrug": "ЮВАО"}},
		}}},
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	return catalog.Record{Source: src, ExternalID: id, Op: catalog.OpUpsert, ContentHash: hex.EncodeToString(sum[:]), Doc: raw, SeenAt: time.Now()}
}

// get serves a GET and returns the status, the content type and the body.
func (b *testBundle) get(t *testing.T, target string) (int, string, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	b.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	return rec.Code, rec.Header().Get("Content-Type"), body
}

func (b *testBundle) getJSON(t *testing.T, target string, wantStatus int) map[string]any {
	t.Helper()
	code, ctype, body := b.get(t, target)
	require.Equal(t, wantStatus, code, string(body))
	require.Equal(t, "application/json; charset=utf-8", ctype)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), string(body))
	return m
}

func names(page map[string]any) []string {
	var out []string
	for _, c := range page["contents"].([]any) {
		out = append(out, c.(map[string]any)["name"].(string))
	}
	return out
}

func TestMeta(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.getJSON(t, "http://hub.example/", http.StatusOK)
	require.Equal(t, map[string]any{
		"version": "3.0", "profile": "https://socialhub.city/schemas/hsds-3.0/",
		"openapi_url": "http://hub.example/openapi.json", "hub_version": "v1.2.3",
	}, m)
	m = b.getJSON(t, "/nowhere", http.StatusNotFound)
	require.NotEmpty(t, m["error"])
}

func TestServices(t *testing.T) {
	t.Parallel()
	b := setup(t)
	page := b.getJSON(t, "/services", http.StatusOK)
	require.Equal(t, []string{"Комната обогрева", "Психологическая консультация", "Семейная медиация"}, names(page))
	require.EqualValues(t, 3, page["total_items"])
	require.EqualValues(t, 1, page["total_pages"])
	require.EqualValues(t, 1, page["page_number"])
	require.EqualValues(t, 3, page["size"])
	require.Equal(t, true, page["first_page"])
	require.Equal(t, true, page["last_page"])
	require.Equal(t, false, page["empty"])

	require.Equal(t, []string{"Семейная медиация"}, names(b.getJSON(t, "/services?search=медиация", http.StatusOK)))
	require.Equal(t, []string{"Комната обогрева"}, names(b.getJSON(t, "/services?taxonomy_term_id=cooling-rooms", http.StatusOK)))
	org12 := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-12").String()
	require.Equal(t, []string{"Психологическая консультация", "Семейная медиация"},
		names(b.getJSON(t, "/services?organization_id="+org12, http.StatusOK)))
	require.Equal(t, []string{"Психологическая консультация"},
		names(b.getJSON(t, "/services?organization_id="+org12+"&search=психолог", http.StatusOK)))
	require.Len(t, names(b.getJSON(t, "/services?modified_after=2000-01-01", http.StatusOK)), 3)
	require.Empty(t, names(b.getJSON(t, "/services?modified_after="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), http.StatusOK)))

	page = b.getJSON(t, "/services?page=2&per_page=2", http.StatusOK)
	require.Equal(t, []string{"Семейная медиация"}, names(page))
	require.Equal(t, false, page["first_page"])
	require.Equal(t, true, page["last_page"])
	page = b.getJSON(t, "/services?page=9&per_page=2", http.StatusOK)
	require.Equal(t, true, page["empty"])
	require.Equal(t, []any{}, page["contents"])

	// Russian text is not escaped.
	_, _, body := b.get(t, "/services")
	require.Contains(t, string(body), "Семейная медиация")
	require.Contains(t, string(body), `ГБУ ТЦСО \"Марьино\"`)

	id := catalog.CanonicalID(catalog.EntityService, src, "DSZN-1").String()
	svc := b.getJSON(t, "/services/"+id, http.StatusOK)
	require.Equal(t, id, svc["id"])
	require.Equal(t, org12, svc["organization"].(map[string]any)["id"])
	sal := svc["service_at_locations"].([]any)[0].(map[string]any)
	require.Equal(t, "ЮВАО", sal["location"].(map[string]any)["addresses"].([]any)[0].(map[string]any)["okrug"])

	require.Equal(t, "not found", b.getJSON(t, "/services/"+catalog.CanonicalID(catalog.EntityService, src, "X").String(), http.StatusNotFound)["error"])
	require.Equal(t, "not found", b.getJSON(t, "/services/DSZN-1", http.StatusNotFound)["error"])
}

func TestOrganizations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	page := b.getJSON(t, "/organizations", http.StatusOK)
	require.Equal(t, []string{`ГБУ ТЦСО "Марьино"`, "ГБУ ЦСА «Люблино»"}, names(page))
	require.Equal(t, []string{"ГБУ ЦСА «Люблино»"}, names(b.getJSON(t, "/organizations?search=Люблино", http.StatusOK)))

	id := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-12").String()
	org := b.getJSON(t, "/organizations/"+id, http.StatusOK)
	require.Equal(t, id, org["id"])
	require.Len(t, org["services"], 2)
	b.getJSON(t, "/organizations/"+catalog.CanonicalID(catalog.EntityOrganization, src, "X").String(), http.StatusNotFound)
}

func TestBadQueries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for target, fields := range map[string][]string{
		"/services?per_page=0":                      {"per_page"},
		"/services?per_page=501":                    {"per_page"},
		"/services?per_page=abc":                    {"per_page"},
		"/services?page=0":                          {"page"},
		"/services?page=-1&per_page=1000":           {"page", "per_page"},
		"/services?modified_after=yesterday":        {"modified_after"},
		"/services?organization_id=ORG-12":          {"organization_id"},
		"/organizations?page=x&modified_after=2024": {"page", "modified_after"},
	} {
		m := b.getJSON(t, target, http.StatusBadRequest)
		require.Equal(t, "invalid query parameters", m["error"], target)
		var got []string
		for _, f := range m["fields"].([]any) {
			got = append(got, f.(map[string]any)["field"].(string))
			require.NotEmpty(t, f.(map[string]any)["message"])
		}
		require.Equal(t, fields, got, target)
	}
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := b.getJSON(t, "/openapi.json", http.StatusOK)
	require.Regexp(t, `^3\.0\.\d+$`, doc["openapi"])
	paths := doc["paths"].(map[string]any)
	for _, p := range []string{"/", "/services", "/services/{id}", "/organizations", "/organizations/{id}",
		"/openapi.json", "/healthz", "/readyz", "/metrics"} {
		require.Contains(t, paths, p)
	}
	// The document describes every route of this server; internal/hub's TestOpenAPIDescribesWhatIsServed
	// checks it against everything the hub mounts, both ways.
	for _, route := range b.srv.Routes() {
		_, path, ok := strings.Cut(route, " ")
		if !ok {
			continue // the catch-all 404
		}
		require.Contains(t, paths, strings.ReplaceAll(path, "{$}", ""), route)
	}

	// Every $ref resolves.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	params := doc["components"].(map[string]any)["parameters"].(map[string]any)
	_, _, body := b.get(t, "/openapi.json")
	for _, ref := range refs(t, body) {
		switch {
		case strings.HasPrefix(ref, "#/components/schemas/"):
			require.Contains(t, schemas, strings.TrimPrefix(ref, "#/components/schemas/"))
		case strings.HasPrefix(ref, "#/components/parameters/"):
			require.Contains(t, params, strings.TrimPrefix(ref, "#/components/parameters/"))
		default:
			t.Fatalf("unexpected $ref %s", ref)
		}
	}
}

func refs(t *testing.T, body []byte) []string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "$ref" {
					out = append(out, c.(string))
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, "ok", b.getJSON(t, "/healthz", http.StatusOK)["status"])
	require.Equal(t, "ready", b.getJSON(t, "/readyz", http.StatusOK)["status"])
	b.mu.Lock()
	b.ready = errors.New("database: connection refused")
	b.mu.Unlock()
	require.Equal(t, "database: connection refused", b.getJSON(t, "/readyz", http.StatusServiceUnavailable)["error"])

	b.getJSON(t, "/services?search=секрет", http.StatusOK)
	code, _, body := b.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `socialhub_http_requests_total{code="200",route="GET /services"} 1`)
	require.Contains(t, string(body), `socialhub_http_requests_total{code="503",route="GET /readyz"} 1`)
	require.Contains(t, string(body), `socialhub_http_request_duration_seconds_count{route="GET /services"} 1`)

	logs := b.logs.String()
	require.Contains(t, logs, `"route":"GET /services"`)
	require.Contains(t, logs, `"status":200`)
	require.NotContains(t, logs, "секрет", "query strings are not logged")
}

func TestHandleMountsRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.Handle("POST /v1/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	rec := httptest.NewRecorder()
	b.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/echo", nil))
	require.Equal(t, http.StatusAccepted, rec.Code)
	_, _, body := b.get(t, "/metrics")
	require.Contains(t, string(body), `socialhub_http_requests_total{code="202",route="POST /v1/echo"} 1`)

	// A second server on the same registry shares the metrics instead of panicking.
	require.NotPanics(t, func() { api.New(api.Options{Registerer: b.reg}) })
}
