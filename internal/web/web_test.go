package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"socialhub/internal/audit"
	"socialhub/internal/clients"
	"socialhub/internal/pgtest"
	"socialhub/internal/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	srv     *httptest.Server
	clients *clients.Store
	reg     *prometheus.Registry
}

func setup(t *testing.T, opts web.Options) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, web.Migrations(), audit.Migrations(), clients.Migrations())
	b := testBundle{clients: clients.NewStore(db.Pool), reg: prometheus.NewRegistry()}
	opts.Stats = web.NewStats(db.Pool, b.reg)
	opts.Guard = clients.NewGuard(b.clients, audit.New(db.Pool), nil)
	h, err := web.New(opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.Handle("GET /{$}", web.RedirectBrowsers(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"version":"3.0"}`))
	})))
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b testBundle) do(t *testing.T, method, path string, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return res, buf.Bytes()
}

func TestPagesAndRedirect(t *testing.T) {
	t.Parallel()
	b := setup(t, web.Options{})
	res, body := b.do(t, "GET", "/navigator/", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `lang="ru"`)
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "img-src 'self' data: https://tile.openstreetmap.org")
	res, body = b.do(t, "GET", "/console/", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), "Консоль")
	for _, asset := range []string{"/web/style.css", "/web/hsds.js", "/web/map.js", "/navigator/navigator.js", "/console/console.js"} {
		res, _ = b.do(t, "GET", asset, "")
		require.Equal(t, http.StatusOK, res.StatusCode, asset)
	}
	res, body = b.do(t, "GET", "/web/config.json", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var cfg struct {
		TileURL  string `json:"tile_url"`
		Taxonomy []any  `json:"taxonomy"`
		Okrugs   []any  `json:"okrugs"`
	}
	require.NoError(t, json.Unmarshal(body, &cfg))
	require.Equal(t, web.DefaultTileURL, cfg.TileURL)
	require.NotEmpty(t, cfg.Taxonomy)
	require.Len(t, cfg.Okrugs, 12)

	// A browser at the root goes to the navigator; an API client keeps the HSDS root.
	res, _ = b.do(t, "GET", "/", "", "Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	require.Equal(t, http.StatusFound, res.StatusCode)
	require.Equal(t, web.NavigatorPath, res.Header.Get("Location"))
	res, body = b.do(t, "GET", "/", "", "Accept", "application/json")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), "3.0")
	res, _ = b.do(t, "GET", "/", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestTileOptions(t *testing.T) {
	t.Parallel()
	_, err := web.New(web.Options{TileURL: "ftp://tiles/{z}/{x}/{y}"})
	require.Error(t, err)
	_, err = web.New(web.Options{TileURL: "https://tiles.example/no-placeholders.png"})
	require.Error(t, err)
	_, err = web.New(web.Options{TileURL: web.TilesOff})
	require.NoError(t, err)
	_, err = web.New(web.Options{TileURL: "https://{s}.tile.example.org/{z}/{x}/{y}.png"})
	require.NoError(t, err)
}

func TestSearchAnalytics(t *testing.T) {
	t.Parallel()
	b := setup(t, web.Options{})
	for _, body := range []string{
		`{"category":"employment"}`,
		`{"category":"employment","okrug":"ЮВАО"}`,
		`{"category":"employment","okrug":"ЮВАО","district":"Марьино"}`,
		`{"category":"employment","okrug":"ЮВАО","district":"Марьино"}`,
		`{"category":"legal-help","district":"Марьино"}`,
	} {
		res, out := b.do(t, "POST", "/v1/stats/searches", body)
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(out))
	}
	// Bad input is a 400 with the field; nothing outside the reference lists is counted.
	for body, field := range map[string]string{
		`{"category":"astrology"}`:                                     "category",
		`{"category":"employment","okrug":"XYZ"}`:                      "okrug",
		`{"category":"employment","district":"Атлантида"}`:             "district",
		`{"category":"employment","okrug":"ЦАО","district":"Марьино"}`: "district",
		`{"category":"employment","who":"Иванов"}`:                     "body",
		`not json`: "body",
	} {
		res, out := b.do(t, "POST", "/v1/stats/searches", body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
		require.Contains(t, string(out), `"field":"`+field+`"`, body)
	}

	res, body := b.do(t, "GET", "/v1/stats/searches", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var out struct {
		Searches []web.SearchCount `json:"searches"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	require.Len(t, out.Searches, 4)
	require.Equal(t, "employment", out.Searches[0].Category)
	require.Equal(t, "Марьино", out.Searches[0].District)
	require.Equal(t, int64(2), out.Searches[0].Count, "most searched first")
	require.Equal(t, "Содействие занятости", out.Searches[0].Name)
	require.Equal(t, 2.0, testutil.ToFloat64(mustCounter(t, b.reg, "employment", "ЮВАО", "Марьино")))

	for _, q := range []string{"?from=yesterday", "?from=2025-02-01&to=2025-01-01", "?from=2020-01-01&to=2025-01-01"} {
		res, _ := b.do(t, "GET", "/v1/stats/searches"+q, "")
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
	}
	res, body = b.do(t, "GET", "/v1/stats/searches?from=2020-01-01&to=2020-01-31", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `"searches":[]`)
}

func mustCounter(t *testing.T, reg *prometheus.Registry, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "socialhub_navigator_searches_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["category"] == labels[0] && got["okrug"] == labels[1] && got["district"] == labels[2] {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	require.FailNow(t, "no such counter")
	return nil
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	b := setup(t, web.Options{})
	_, token, err := b.clients.Create(context.Background(), clients.NewClient{Name: "Оператор", Kind: clients.KindOperator,
		Scopes: []string{clients.ScopeEligibilityRead}, Purposes: []string{"consultation"}})
	require.NoError(t, err)
	res, _ := b.do(t, "GET", "/v1/whoami", "")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, body := b.do(t, "GET", "/v1/whoami", "", "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `"purposes":["consultation"]`)
	require.NotContains(t, string(body), token)
}
