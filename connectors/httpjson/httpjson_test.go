package httpjson_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/connectortest"
	"socialhub/connectors/fetch"
	"socialhub/connectors/httpjson"
	"socialhub/internal/config"
	"socialhub/internal/pgtest"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// api is a test JSON API over a list of items, paged in one style, that a test can change.
type api struct {
	mu       sync.Mutex
	items    []map[string]any
	style    string
	status   int
	retry    string
	requests []*url.URL
	auth     []string
	served   int
}

func newAPI(t testing.TB, style string, items []map[string]any) (*api, *httptest.Server) {
	a := &api{items: items, style: style}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, srv
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.URL)
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	if a.status != 0 {
		if a.retry != "" {
			w.Header().Set("Retry-After", a.retry)
		}
		http.Error(w, "перегрузка", a.status)
		return
	}
	a.served++
	q := r.URL.Query()
	num := func(k string, def int) int {
		if v, err := strconv.Atoi(q.Get(k)); err == nil {
			return v
		}
		return def
	}
	slice := func(from, n int) []map[string]any {
		from = min(max(from, 0), len(a.items))
		return a.items[from:min(from+n, len(a.items))]
	}
	// generated_at changes with every answer: the list's hash must cover the items only.
	body := map[string]any{"generated_at": time.Now().Format(time.RFC3339Nano)}
	switch a.style {
	case "none":
		body["data"] = a.items
	case "page":
		size := num("per_page", 10)
		body["data"] = slice((num("page", 1)-1)*size, size)
	case "offset":
		body["data"] = slice(num("offset", 0), num("limit", 10))
	case "cursor":
		from := 0
		if c := q.Get("cursor"); c != "" {
			from, _ = strconv.Atoi(strings.TrimPrefix(c, "tok-"))
		}
		size := num("limit", 10)
		body["data"] = slice(from, size)
		var next any
		if from+size < len(a.items) {
			next = "tok-" + strconv.Itoa(from+size)
		}
		body["meta"] = map[string]any{"next": next}
	case "link":
		size := num("size", 10)
		page := num("p", 1)
		if page*size < len(a.items) {
			w.Header().Add("Link", fmt.Sprintf(`<https://elsewhere.example/docs>; rel="help", <?p=%d&size=%d>; rel="next last"`, page+1, size))
		}
		_ = json.NewEncoder(w).Encode(slice((page-1)*size, size))
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (a *api) set(fn func(a *api)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(a)
}

func (a *api) seen() []*url.URL {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

// ngoItems are an NGO's services as its own API writes them.
func ngoItems(n int) []map[string]any {
	cats := []string{"psych-individual", "psych-group", "legal-help", "family-mediation"}
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{
			"uid":   fmt.Sprintf("ngo-%03d", i+1),
			"title": fmt.Sprintf("Консультация № %d", i+1),
			"about": "Бесплатно, по записи.",
			"provider": map[string]any{
				"name": "АНО «Точка опоры»", "inn": "7701234567",
			},
			"contacts": []any{map[string]any{"phone": fmt.Sprintf("+7 (495) 100-%02d-%02d", i/100, i%100)}},
			"geo":      map[string]any{"lat": 55.75 + float64(i%10)/1000, "lon": 37.62},
			"place":    map[string]any{"address": fmt.Sprintf("ул. Покровка, д. %d", 1+i%40), "okrug": "ЦАО", "district": "Басманный"},
			"category": cats[i%len(cats)],
			"a/b":      "escaped",
		}
	}
	return out
}

var ngoFields = map[string]any{
	"id": "/uid", "service_name": "/title", "service_description": "/about",
	"organization_name": "/provider/name", "inn": "/provider/inn", "phone": "/contacts/0/phone",
	"latitude": "/geo/lat", "longitude": "/geo/lon", "address": "/place/address", "okrug": "/place/okrug",
	"district": "/place/district", "category": "/category", "hours": "/a~1b",
}

func options(srv *httptest.Server, style string) map[string]any {
	o := map[string]any{"url": srv.URL + "/api/services?region=moscow", "items": "/data", "fields": ngoFields}
	switch style {
	case "page":
		o["pagination"] = map[string]any{"type": "page", "size": 4}
	case "offset":
		o["pagination"] = map[string]any{"type": "offset", "size": 4}
	case "cursor":
		o["pagination"] = map[string]any{"type": "cursor", "size": 4, "size_param": "limit", "cursor_pointer": "/meta/next"}
	case "link":
		o["items"] = ""
		o["pagination"] = map[string]any{"type": "link", "size": 4, "size_param": "size"}
	}
	return o
}

func source(t testing.TB, opts map[string]any, env map[string]string) connectors.Source {
	t.Helper()
	if _, ok := opts["rate_limit"]; !ok {
		opts["rate_limit"] = -1
	}
	cfg, err := config.NewSource("ngo", "httpjson", "", opts)
	require.NoError(t, err)
	src, err := httpjson.New(cfg, connectors.Deps{Getenv: func(k string) string { return env[k] }})
	require.NoError(t, err)
	return src
}

func TestAcceptance(t *testing.T) {
	t.Parallel()
	items := ngoItems(13)
	items[5]["title"] = map[string]any{"ru": "Консультация"} // an object where a value should be
	type input struct {
		a   *api
		srv *httptest.Server
	}
	outer := t
	inputs := &connectortest.PerSubtest[input]{Build: func() input {
		a, srv := newAPI(outer, "page", slices.Clone(items))
		return input{a, srv}
	}}
	connectortest.Run(t, connectortest.Fixture{
		New:      func(t *testing.T) connectors.Source { return source(t, options(inputs.Get(t).srv, "page"), nil) },
		Want:     13,
		Rejected: 1,
		Shrink: func(t *testing.T) []string {
			inputs.Get(t).a.set(func(a *api) {
				a.items = slices.Delete(slices.Clone(a.items), 9, 11)
			})
			return []string{"ngo-010", "ngo-011"}
		},
		Break: func(t *testing.T) {
			inputs.Get(t).a.set(func(a *api) { a.status = http.StatusServiceUnavailable })
		},
	})
}

func TestPaginationStyles(t *testing.T) {
	t.Parallel()
	for _, style := range []string{"none", "page", "offset", "cursor", "link"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			a, srv := newAPI(t, style, ngoItems(10))
			recs := connectortest.ReadAll(t, source(t, options(srv, style), nil), nil)
			require.Len(t, recs, 10)
			for i, r := range recs {
				require.Equal(t, fmt.Sprintf("ngo-%03d", i+1), r.ExternalID)
				require.Empty(t, r.Reasons)
			}
			var last struct {
				Complete bool `json:"complete"`
			}
			require.NoError(t, json.Unmarshal(recs[9].Position, &last))
			require.True(t, last.Complete)
			for _, u := range a.seen() {
				if style != "link" || u.Query().Get("p") == "" {
					require.Equal(t, "/api/services", u.Path)
				}
			}
		})
	}
}

func TestMapsFieldsWithPointers(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t, "none", ngoItems(2))
	recs := connectortest.ReadAll(t, source(t, options(srv, "none"), nil), nil)
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	viol, err := v.Validate(recs[1].EntityType, recs[1].Data)
	require.NoError(t, err)
	require.Empty(t, viol, "%s", recs[1].Data)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(recs[1].Data, &doc))
	require.Equal(t, "Консультация № 2", doc["name"])
	require.Equal(t, "+7 (495) 100-00-01", doc["phones"].([]any)[0].(map[string]any)["number"])
	require.Equal(t, "escaped", doc["schedules"].([]any)[0].(map[string]any)["description"], "~1 unescapes to /")
	loc := doc["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	require.Equal(t, 55.751, loc["latitude"])
	require.Equal(t, "ЦАО", loc["addresses"].([]any)[0].(map[string]any)["okrug"])
	require.Equal(t, "psych-group", doc["attributes"].([]any)[0].(map[string]any)["taxonomy_term_id"])
}

func TestRejectsUnmappableItems(t *testing.T) {
	t.Parallel()
	items := ngoItems(3)
	delete(items[0], "uid")
	items[1]["contacts"] = []any{map[string]any{"phone": []any{"1", "2"}}}
	_, srv := newAPI(t, "none", items)
	recs := connectortest.ReadAll(t, source(t, options(srv, "none"), nil), nil)
	require.Len(t, recs, 3)
	require.Equal(t, "id", recs[0].Reasons[0].Field)
	require.True(t, strings.HasPrefix(recs[0].ExternalID, "item-"), "keyed by its content")
	require.Contains(t, string(recs[0].Data), "Консультация № 1", "what was read goes to dlq")
	require.Equal(t, "ngo-002", recs[1].ExternalID)
	require.Equal(t, "phone", recs[1].Reasons[0].Field)
	require.Empty(t, recs[2].Reasons)
	again := connectortest.ReadAll(t, source(t, options(srv, "none"), nil), nil)
	require.Equal(t, recs[0].ExternalID, again[0].ExternalID)
}

func TestResumesAtTheNextRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		style, key, want string
	}{
		{"page", "page", "3"},
		{"offset", "offset", "8"},
		{"cursor", "cursor", "tok-8"},
		{"link", "p", "3"},
	} {
		a, srv := newAPI(t, tc.style, ngoItems(10))
		all := connectortest.ReadAll(t, source(t, options(srv, tc.style), nil), nil)
		before := len(a.seen())
		// Killed after 8 records, the end of the second page: the next run asks for the third.
		rest := connectortest.ReadAll(t, source(t, options(srv, tc.style), nil), all[7].Position)
		require.Len(t, rest, 2, tc.style)
		require.Equal(t, "ngo-009", rest[0].ExternalID, tc.style)
		require.Equal(t, tc.want, a.seen()[before].Query().Get(tc.key), tc.style)
		// Killed in the middle of a page: that page again, its first items skipped.
		rest = connectortest.ReadAll(t, source(t, options(srv, tc.style), nil), all[5].Position)
		require.Len(t, rest, 4, tc.style)
		require.Equal(t, "ngo-007", rest[0].ExternalID, tc.style)
	}
}

func TestUnchangedAndChangedLists(t *testing.T) {
	t.Parallel()
	a, srv := newAPI(t, "cursor", ngoItems(10))
	first := source(t, options(srv, "cursor"), nil)
	all := connectortest.ReadAll(t, first, nil)
	snap := first.(connectors.Snapshotter).SnapshotID()
	require.Len(t, snap, 64)
	again := source(t, options(srv, "cursor"), nil)
	require.Empty(t, connectortest.ReadAll(t, again, all[9].Position))
	require.Equal(t, snap, again.(connectors.Snapshotter).SnapshotID())

	a.set(func(a *api) { a.items[3]["title"] = "Новое название" })
	changed := source(t, options(srv, "cursor"), nil)
	require.Len(t, connectortest.ReadAll(t, changed, all[9].Position), 10)
	require.NotEqual(t, snap, changed.(connectors.Snapshotter).SnapshotID())

	opts := options(srv, "cursor")
	opts["full_list"] = false
	partial := source(t, opts, nil)
	connectortest.ReadAll(t, partial, nil)
	require.Empty(t, partial.(connectors.Snapshotter).SnapshotID(), "a list that is not full is no snapshot")
}

func TestTransientErrorsAreRetriable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		retry  string
		wait   time.Duration
	}{
		{http.StatusTooManyRequests, "12", 12 * time.Second},
		{http.StatusServiceUnavailable, "", 0},
		{http.StatusInternalServerError, "", 0},
	} {
		a, srv := newAPI(t, "page", ngoItems(10))
		a.status, a.retry = tc.status, tc.retry
		err := source(t, options(srv, "page"), nil).Open(context.Background(), nil)
		require.ErrorIs(t, err, connectors.ErrBackoffRetry, "status %d", tc.status)
		require.Equal(t, tc.wait, fetch.RetryAfterOf(err))
	}
	// Mid-run: a resumed run meets the failure on Read.
	a, srv := newAPI(t, "page", ngoItems(10))
	all := connectortest.ReadAll(t, source(t, options(srv, "page"), nil), nil)
	a.set(func(a *api) { a.status = http.StatusBadGateway })
	src := source(t, options(srv, "page"), nil)
	require.NoError(t, src.Open(context.Background(), all[3].Position))
	_, err := src.Read(context.Background())
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestNotJSON(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "1" {
			_, _ = io.WriteString(w, `{"data": {"not": "an array"}}`)
			return
		}
		_, _ = io.WriteString(w, "<html>Ведутся работы</html>")
	}))
	defer srv.Close()
	o := map[string]any{"url": srv.URL, "items": "/data", "fields": ngoFields}
	err := source(t, o, nil).Open(context.Background(), nil)
	require.ErrorIs(t, err, httpjson.ErrNotJSON)
	require.ErrorContains(t, err, srv.URL)
	require.ErrorContains(t, err, "Ведутся работы")
	o["pagination"] = map[string]any{"type": "page"}
	err = source(t, o, nil).Open(context.Background(), nil)
	require.ErrorIs(t, err, httpjson.ErrNotJSON)
	require.ErrorContains(t, err, "not an array")
}

func TestAPIIgnoringPagingIsAnError(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t, "none", ngoItems(3))
	o := options(srv, "page") // the API answers every page with the whole list
	err := source(t, o, nil).Open(context.Background(), nil)
	require.ErrorIs(t, err, httpjson.ErrPaging)
}

func TestAuthAndRateLimit(t *testing.T) {
	t.Parallel()
	a, srv := newAPI(t, "page", ngoItems(16))
	env := map[string]string{"NGO_USER": "hub", "NGO_PASSWORD": "pw"}
	o := options(srv, "page")
	o["rate_limit"] = 20
	o["auth"] = map[string]any{"type": "basic", "user_env": "NGO_USER", "password_env": "NGO_PASSWORD"}
	start := time.Now()
	require.Len(t, connectortest.ReadAll(t, source(t, o, env), nil), 16)
	n := len(a.seen())
	require.Equal(t, 5, n, "four pages and the empty one that ends the list")
	require.GreaterOrEqual(t, time.Since(start), time.Duration(n-1)*50*time.Millisecond-10*time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.auth {
		require.Equal(t, "Basic aHViOnB3", h)
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]map[string]any{
		"no url":           {"fields": ngoFields},
		"no id":            {"url": "https://x", "fields": map[string]any{"service_name": "/a", "organization_name": "/b"}},
		"unknown field":    {"url": "https://x", "fields": map[string]any{"id": "/a", "service_name": "/a", "organization_name": "/b", "nmae": "/c"}},
		"not a pointer":    {"url": "https://x", "fields": map[string]any{"id": "a", "service_name": "/a", "organization_name": "/b"}},
		"items":            {"url": "https://x", "items": "data", "fields": ngoFields},
		"paging type":      {"url": "https://x", "fields": ngoFields, "pagination": map[string]any{"type": "scroll"}},
		"cursor pointer":   {"url": "https://x", "fields": ngoFields, "pagination": map[string]any{"type": "cursor"}},
		"unknown option":   {"url": "https://x", "fields": ngoFields, "paging": map[string]any{}},
		"secret not set":   {"url": "https://x", "fields": ngoFields, "auth": map[string]any{"type": "bearer", "token_env": "NOPE"}},
		"negative size":    {"url": "https://x", "fields": ngoFields, "pagination": map[string]any{"type": "page", "size": -5}},
		"negative maxpage": {"url": "https://x", "fields": ngoFields, "max_pages": -1},
	} {
		cfg, err := config.NewSource("x", "httpjson", "", opts)
		require.NoError(t, err)
		_, err = httpjson.New(cfg, connectors.Deps{Getenv: func(string) string { return "" }})
		require.ErrorIs(t, err, connectors.ErrBadOptions, name)
	}
}

func BenchmarkHTTPJSONRead(b *testing.B) {
	_, srv := newAPI(b, "cursor", ngoItems(2000))
	o := options(srv, "cursor")
	o["pagination"].(map[string]any)["size"] = 500
	n := 0
	for b.Loop() {
		n += len(connectortest.ReadAll(b, source(b, o, nil), nil))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// Whatever an API answers, with whatever Link header, the source neither panics nor emits a
// record that is not JSON.
func FuzzPage(f *testing.F) {
	f.Add([]byte(`[{"uid":"a","title":"x","provider":{"name":"y"}}]`), `<?p=2>; rel="next"`)
	f.Add([]byte(`[{"uid":{"a":1}},1,"s",null]`), `<>; rel=next, <x`)
	f.Fuzz(func(t *testing.T, body []byte, link string) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) > 3 {
				_, _ = io.WriteString(w, "[]")
				return
			}
			w.Header().Set("Link", link)
			_, _ = w.Write(body)
		}))
		defer srv.Close()
		o := map[string]any{"url": srv.URL, "items": "", "fields": ngoFields, "pagination": map[string]any{"type": "link"}}
		src := source(t, o, nil)
		ctx := context.Background()
		if err := src.Open(ctx, nil); err != nil {
			return
		}
		for range 50 {
			r, err := src.Read(ctx)
			if err != nil {
				return
			}
			require.True(t, json.Valid(r.Data))
			require.NotEmpty(t, r.ExternalID)
		}
	})
}
