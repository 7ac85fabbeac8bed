package csv_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"

	"socialhub/connectors"
	"socialhub/connectors/connectortest"
	"socialhub/connectors/csv"
	"socialhub/connectors/fetch"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/pgtest"
)

const header = "Код;Код учреждения;Учреждение;ИНН;ОГРН;Услуга;Описание;Категория;Точка обслуживания;Адрес;Район;Округ;Индекс;Широта;Долгота;Телефон;Email;Сайт;Часы работы\n"

const rows = `DSZN-1;ORG-1;ГБУ ТЦСО "Марьино";7723012345;1027700000001;Семейная медиация;Помощь медиатора;family-mediation;Филиал Марьино;ул. Братиславская, д. 14;Марьино;ЮВАО;109451;55,6502;37.7436;+7 (495) 123-45-67;marino@mos.ru;https://tcso-marino.mos.ru;пн-пт 9:00–18:00
DSZN-2;ORG-1;ГБУ ТЦСО "Марьино";7723012345;1027700000001;Юридическая консультация;;legal-help;Филиал Марьино;ул. Братиславская, д. 14;Марьино;ЮВАО;109451;55.6502;37.7436;;;;

DSZN-3;ORG-2;ГКУ ЦЗН «Моя работа»;;;Пособие по безработице;;employment-benefit;;ул. Тверская, д. 1;Тверской;ЦАО;;не число;37.6;;;;круглосуточно
`

func source(t testing.TB, opts map[string]any) connectors.Source {
	t.Helper()
	cfg, err := config.NewSource("dszn", "csv", "", opts)
	require.NoError(t, err)
	src, err := csv.New(cfg, connectors.Deps{})
	require.NoError(t, err)
	return src
}

func writeFile(t testing.TB, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "points.csv")
	require.NoError(t, os.WriteFile(path, content, 0o600))
	return path
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// list is a department's server publishing its CSV, which a test can change or break.
type list struct {
	mu       sync.Mutex
	body     string
	status   int
	retry    string
	requests int
	auth     []string
}

func (l *list) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	l.auth = append(l.auth, r.Header.Get("Authorization"))
	if l.status != 0 {
		if l.retry != "" {
			w.Header().Set("Retry-After", l.retry)
		}
		http.Error(w, "сервис недоступен", l.status)
		return
	}
	sum := sha256.Sum256([]byte(l.body))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	_, _ = io.WriteString(w, l.body)
}

func (l *list) set(fn func(l *list)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l)
}

func TestAcceptance(t *testing.T) {
	t.Parallel()
	type input struct {
		l   *list
		srv *httptest.Server
	}
	outer := t
	inputs := &connectortest.PerSubtest[input]{Build: func() input {
		l := &list{body: header + rows}
		srv := httptest.NewServer(l)
		outer.Cleanup(srv.Close)
		return input{l, srv}
	}}
	connectortest.Run(t, connectortest.Fixture{
		New: func(t *testing.T) connectors.Source {
			return source(t, map[string]any{"url": inputs.Get(t).srv.URL, "rate_limit": -1})
		},
		Want: 3,
		Shrink: func(t *testing.T) []string {
			inputs.Get(t).l.set(func(l *list) { l.body = header + strings.SplitN(rows, "\n", 2)[0] + "\n" })
			return []string{"DSZN-2", "DSZN-3"}
		},
		Break: func(t *testing.T) {
			inputs.Get(t).l.set(func(l *list) { l.status = http.StatusServiceUnavailable })
		},
	})
}

func TestAcceptanceFromPath(t *testing.T) {
	t.Parallel()
	outer := t
	paths := &connectortest.PerSubtest[string]{Build: func() string { return writeFile(outer, []byte(header+rows)) }}
	connectortest.Run(t, connectortest.Fixture{
		New:  func(t *testing.T) connectors.Source { return source(t, map[string]any{"path": paths.Get(t)}) },
		Want: 3,
		Shrink: func(t *testing.T) []string {
			require.NoError(t, os.WriteFile(paths.Get(t), []byte(header+strings.SplitN(rows, "\n", 2)[0]+"\n"), 0o600))
			return []string{"DSZN-2", "DSZN-3"}
		},
		Break: func(t *testing.T) { require.NoError(t, os.Remove(paths.Get(t))) },
	})
}

func TestSnapshotIsTheContentHash(t *testing.T) {
	t.Parallel()
	l := &list{body: header + rows}
	srv := httptest.NewServer(l)
	defer srv.Close()
	src := source(t, map[string]any{"url": srv.URL, "rate_limit": -1})
	recs := connectortest.ReadAll(t, src, nil)
	sum := sha256.Sum256([]byte(header + rows))
	require.Equal(t, hex.EncodeToString(sum[:]), src.(connectors.Snapshotter).SnapshotID())

	// Not modified: nothing read, the same snapshot.
	again := source(t, map[string]any{"url": srv.URL, "rate_limit": -1})
	require.Empty(t, connectortest.ReadAll(t, again, recs[2].Position))
	require.Equal(t, hex.EncodeToString(sum[:]), again.(connectors.Snapshotter).SnapshotID())
}

// A run cut short must fetch the content again to finish it, even though the server would say
// «not modified» to the validators it saw.
func TestInterruptedRunIsNotConditional(t *testing.T) {
	t.Parallel()
	l := &list{body: header + rows}
	srv := httptest.NewServer(l)
	defer srv.Close()
	recs := connectortest.ReadAll(t, source(t, map[string]any{"url": srv.URL, "rate_limit": -1}), nil)
	rest := connectortest.ReadAll(t, source(t, map[string]any{"url": srv.URL, "rate_limit": -1}), recs[0].Position)
	require.Len(t, rest, 2)
	require.Equal(t, "DSZN-2", rest[0].ExternalID)
}

func TestTooManyRequestsIsRetriable(t *testing.T) {
	t.Parallel()
	l := &list{body: header + rows, status: http.StatusTooManyRequests, retry: "17"}
	srv := httptest.NewServer(l)
	defer srv.Close()
	err := source(t, map[string]any{"url": srv.URL, "rate_limit": -1}).Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
	require.Equal(t, 17*time.Second, fetch.RetryAfterOf(err))
}

func TestAuthAndRateLimit(t *testing.T) {
	t.Parallel()
	l := &list{body: header + rows}
	srv := httptest.NewServer(l)
	defer srv.Close()
	env := map[string]string{"DSZN_TOKEN": "t0ken"}
	cfg, err := config.NewSource("dszn", "csv", "", map[string]any{"url": srv.URL, "rate_limit": 20, "auth": map[string]any{"type": "bearer", "token_env": "DSZN_TOKEN"}})
	require.NoError(t, err)
	src, err := csv.New(cfg, connectors.Deps{Getenv: func(k string) string { return env[k] }})
	require.NoError(t, err)
	start := time.Now()
	for range 4 {
		require.NoError(t, src.Open(context.Background(), nil))
		require.NoError(t, src.Close(context.Background()))
	}
	require.GreaterOrEqual(t, time.Since(start), 140*time.Millisecond, "four fetches at 20/s")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Equal(t, []string{"Bearer t0ken", "Bearer t0ken", "Bearer t0ken", "Bearer t0ken"}, l.auth)
}

func BenchmarkCSVRead(b *testing.B) {
	var buf bytes.Buffer
	_, err := demo.WriteDepartmentCSV(&buf, demo.Options{Rows: 5000})
	require.NoError(b, err)
	path := filepath.Join(b.TempDir(), "dszn.csv")
	require.NoError(b, os.WriteFile(path, buf.Bytes(), 0o600))
	n := 0
	for b.Loop() {
		n += len(connectortest.ReadAll(b, source(b, map[string]any{"path": path}), nil))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func TestMapsRowToServiceDocument(t *testing.T) {
	t.Parallel()
	recs := connectortest.ReadAll(t, source(t, map[string]any{"path": writeFile(t, []byte(header+rows))}), nil)
	require.Len(t, recs, 3, "the blank line is skipped")
	var doc map[string]any
	require.NoError(t, json.Unmarshal(recs[0].Data, &doc))
	require.Equal(t, "DSZN-1", doc["id"])
	require.Equal(t, "Семейная медиация", doc["name"])
	require.Equal(t, "active", doc["status"])
	org := doc["organization"].(map[string]any)
	require.Equal(t, `ГБУ ТЦСО "Марьино"`, org["name"])
	require.Len(t, org["organization_identifiers"], 2)
	require.NotContains(t, org, "website", "«Сайт» is the service's page, not the organization's")
	sal := doc["service_at_locations"].([]any)[0].(map[string]any)
	loc := sal["location"].(map[string]any)
	require.Equal(t, 55.6502, loc["latitude"], "comma decimal separator accepted")
	addr := loc["addresses"].([]any)[0].(map[string]any)
	require.Equal(t, "Марьино", addr["district"])
	require.Equal(t, "ЮВАО", addr["okrug"])
	require.Equal(t, "Москва", addr["city"])
	require.Equal(t, "family-mediation", doc["attributes"].([]any)[0].(map[string]any)["taxonomy_term_id"])

	require.NoError(t, json.Unmarshal(recs[2].Data, &doc))
	loc = doc["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	require.Equal(t, "не число", loc["latitude"], "an unparseable number is kept for the validator to report")
	require.Equal(t, "ГКУ ЦЗН «Моя работа»", loc["name"], "location name falls back to the organization")
}

func TestEncodings(t *testing.T) {
	t.Parallel()
	cp, err := charmap.Windows1251.NewEncoder().Bytes([]byte(header + rows))
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		content  []byte
		encoding string
	}{
		"utf-8 with BOM":        {append([]byte("\xef\xbb\xbf"), header+rows...), "auto"},
		"windows-1251 auto":     {cp, "auto"},
		"windows-1251 explicit": {cp, "windows-1251"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recs := connectortest.ReadAll(t, source(t, map[string]any{"path": writeFile(t, tc.content), "encoding": tc.encoding}), nil)
			require.Len(t, recs, 3)
			require.Contains(t, string(recs[0].Data), "Семейная медиация")
		})
	}
	// UTF-8 declared but the bytes are not: a clear error, not mojibake.
	src := source(t, map[string]any{"path": writeFile(t, cp), "encoding": "utf-8"})
	require.ErrorContains(t, src.Open(context.Background(), nil), "windows-1251")
}

func TestHeaderlessWithNumberedColumns(t *testing.T) {
	t.Parallel()
	src := source(t, map[string]any{
		"path": writeFile(t, []byte("A-1,Центр,Психолог\nA-2,Центр,Юрист\n")), "delimiter": ",", "header": false,
		"columns": map[string]any{"id": "1", "organization_name": "2", "service_name": "3"},
	})
	recs := connectortest.ReadAll(t, src, nil)
	require.Len(t, recs, 2)
	require.Equal(t, "A-2", recs[1].ExternalID)
	require.Contains(t, string(recs[1].Data), `"name":"Юрист"`)
}

func TestMissingColumnNamesTheMapping(t *testing.T) {
	t.Parallel()
	src := source(t, map[string]any{"path": writeFile(t, []byte("Код;Услуга\n1;x\n")), "columns": map[string]any{
		"id": "Код", "service_name": "Услуга", "organization_name": "Учреждение",
	}})
	err := src.Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.ErrorContains(t, err, `columns.organization_name = "Учреждение"`)
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]map[string]any{
		"no path or url": {},
		"both":           {"path": "a", "url": "https://x"},
		"bad scheme":     {"url": "ftp://x"},
		"bad encoding":   {"path": "a", "encoding": "koi8"},
		"unknown option": {"path": "a", "colums": map[string]any{}},
		"long delimiter": {"path": "a", "delimiter": ";;"},
	} {
		cfg, err := config.NewSource("x", "csv", "", opts)
		require.NoError(t, err)
		_, err = csv.New(cfg, connectors.Deps{})
		require.ErrorIs(t, err, connectors.ErrBadOptions, name)
	}
}

func TestHTTPWithETag(t *testing.T) {
	t.Parallel()
	var hits, notModified atomic.Int32
	body := header + rows
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	recs := connectortest.ReadAll(t, source(t, map[string]any{"url": srv.URL}), nil)
	require.Len(t, recs, 3)
	// The next run with the saved position asks "changed?" and reads nothing.
	again := connectortest.ReadAll(t, source(t, map[string]any{"url": srv.URL}), recs[2].Position)
	require.Empty(t, again)
	require.Equal(t, int32(1), notModified.Load())
}

func TestHTTPServerErrorIsRetriable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	err := source(t, map[string]any{"url": srv.URL}).Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
	srv404 := httptest.NewServer(http.NotFoundHandler())
	defer srv404.Close()
	err = source(t, map[string]any{"url": srv404.URL}).Open(context.Background(), nil)
	require.Error(t, err)
	require.NotErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestChangedFileStartsOver(t *testing.T) {
	t.Parallel()
	path := writeFile(t, []byte(header+rows))
	first := connectortest.ReadAll(t, source(t, map[string]any{"path": path}), nil)
	require.NoError(t, os.WriteFile(path, []byte(header+strings.Replace(rows, "Помощь медиатора", "Помощь семейного медиатора", 1)), 0o600))
	// The position was for the old content: the new content is read whole.
	second := connectortest.ReadAll(t, source(t, map[string]any{"path": path}), first[2].Position)
	require.Len(t, second, 3)
	require.Contains(t, string(second[0].Data), "семейного")
}

func FuzzRows(f *testing.F) {
	f.Add([]byte(header + rows))
	f.Add([]byte("Код;Учреждение;Услуга\n\"a;b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.csv")
		require.NoError(t, os.WriteFile(path, b, 0o600))
		src := source(t, map[string]any{"path": path, "columns": map[string]any{"id": "Код", "organization_name": "Учреждение", "service_name": "Услуга"}})
		ctx := context.Background()
		if err := src.Open(ctx, nil); err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			r, err := src.Read(ctx)
			if err != nil {
				return
			}
			require.True(t, json.Valid(r.Data))
			require.NotEmpty(t, r.ExternalID)
		}
	})
}
