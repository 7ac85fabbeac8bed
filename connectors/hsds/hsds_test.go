package hsds_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/connectortest"
	"socialhub/connectors/fetch"
	"socialhub/connectors/hsds"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// paging says which parts of the HSDS page header the test feed writes.
type paging int

const (
	pagingFull      paging = iota // every header field
	pagingPagesOnly               // total_pages and page_number only
	pagingLastOnly                // last_page only
	pagingNone                    // contents only: the client stops on an empty page
	pagingArray                   // a bare array of every service, no header
)

// feed is a test HSDS API over a list of services that a test can change while it runs.
type feed struct {
	mu       sync.Mutex
	services []json.RawMessage
	modified map[string]time.Time // last modification per service id; default 2020-01-01
	paging   paging
	status   int    // answer every request with this status when non-zero
	retry    string // Retry-After sent with status
	nested   bool   // list services fully nested even without full=true
	requests []*url.URL
	auth     []string
}

func newFeed(t testing.TB, services []json.RawMessage) (*feed, *httptest.Server) {
	f := &feed{services: services, modified: map[string]time.Time{}, nested: true}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// demoServices are the demo department feed's services, fully nested, in listing order.
func demoServices(t testing.TB) []json.RawMessage {
	srv := httptest.NewServer(demo.HSDSFeed(demo.HSDSFeedOptions{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/services?full=true&per_page=100")
	require.NoError(t, err)
	defer resp.Body.Close()
	var p struct {
		Contents []json.RawMessage `json:"contents"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return p.Contents
}

func idOf(raw json.RawMessage) string {
	var x struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &x)
	return x.ID
}

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if f.status != 0 {
		if f.retry != "" {
			w.Header().Set("Retry-After", f.retry)
		}
		http.Error(w, "сервис временно недоступен", f.status)
		return
	}
	if id, ok := cutPrefix(r.URL.Path, "/services/"); ok {
		for _, s := range f.services {
			if idOf(s) == id {
				_, _ = w.Write(s)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("modified_after"); v != "" {
		since, _ = time.Parse(time.RFC3339, v)
	}
	var match []json.RawMessage
	for _, s := range f.services {
		m := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if len(f.modified) > 0 {
			if t, ok := f.modified[idOf(s)]; ok {
				m = t
			}
		}
		if !m.Before(since) {
			if !f.nested && q.Get("full") != "true" {
				var x map[string]any
				_ = json.Unmarshal(s, &x)
				delete(x, "organization")
				delete(x, "service_at_locations")
				s, _ = json.Marshal(x)
			}
			match = append(match, s)
		}
	}
	if f.paging == pagingArray {
		_ = json.NewEncoder(w).Encode(match)
		return
	}
	pageNo, _ := strconv.Atoi(q.Get("page"))
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	pages := (len(match) + perPage - 1) / perPage
	from := min((pageNo-1)*perPage, len(match))
	to := min(from+perPage, len(match))
	body := map[string]any{"contents": match[from:to]}
	switch f.paging {
	case pagingFull:
		body["total_items"], body["total_pages"], body["page_number"] = len(match), pages, pageNo
		body["size"], body["first_page"], body["last_page"], body["empty"] = to-from, pageNo == 1, pageNo >= pages, len(match) == 0
	case pagingPagesOnly:
		body["total_pages"], body["page_number"] = pages, pageNo
	case pagingLastOnly:
		body["last_page"] = pageNo >= pages
	}
	_ = json.NewEncoder(w).Encode(body)
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func (f *feed) set(fn func(f *feed)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *feed) seen() []*url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func source(t testing.TB, opts map[string]any, env map[string]string) connectors.Source {
	t.Helper()
	if _, ok := opts["rate_limit"]; !ok {
		opts["rate_limit"] = -1
	}
	cfg, err := config.NewSource("trud", "hsds", "", opts)
	require.NoError(t, err)
	src, err := hsds.New(cfg, connectors.Deps{Getenv: func(k string) string { return env[k] }})
	require.NoError(t, err)
	return src
}

func TestAcceptance(t *testing.T) {
	t.Parallel()
	services := append(demoServices(t), json.RawMessage(`{"id":"bad-1","name":42,"status":"active"}`))
	type input struct {
		f   *feed
		srv *httptest.Server
	}
	outer := t
	inputs := &connectortest.PerSubtest[input]{Build: func() input {
		f, srv := newFeed(outer, services)
		return input{f, srv}
	}}
	connectortest.Run(t, connectortest.Fixture{
		New: func(t *testing.T) connectors.Source {
			return source(t, map[string]any{"base_url": inputs.Get(t).srv.URL, "per_page": 7}, nil)
		},
		Want:     len(services),
		Rejected: 1,
		Shrink: func(t *testing.T) []string {
			var gone []string
			inputs.Get(t).f.set(func(f *feed) {
				gone = []string{idOf(f.services[3]), idOf(f.services[10])}
				f.services = slices.Delete(slices.Clone(f.services), 10, 11)
				f.services = slices.Delete(f.services, 3, 4)
			})
			return gone
		},
		Break: func(t *testing.T) {
			inputs.Get(t).f.set(func(f *feed) { f.status = http.StatusServiceUnavailable })
		},
	})
}

func TestMapsHSDSService(t *testing.T) {
	t.Parallel()
	svc := `{"id":"svc-1","name":"Психологическая помощь","status":"active","minimum_age":14,
	"organization":{"id":"org-1","name":"АНО «Точка опоры»","description":"НКО",
		"organization_identifiers":[{"identifier_scheme":"RU-INN","identifier_type":"ИНН","identifier":"7701234567"}]},
	"phones":[{"number":"+74951234567","extension":12}],
	"schedules":[{"freq":"WEEKLY","byday":"MO,TU","opens_at":"09:00","closes_at":"18:00"}],
	"attributes":[{"taxonomy_term":{"id":"T-7","code":"PSY","name":"Психология"}},{"taxonomy_term_id":"legal-help"},{"taxonomy_term_id":"unknown"}],
	"service_at_locations":[{"location_id":"loc-1","location":{"id":"loc-1","location_type":"physical","name":"Офис",
		"latitude":55.75,"longitude":"не число","addresses":[{"address_1":"ул. Покровка, д. 1","city":"Москва","country":"RU","address_type":"physical","okrug":"ЦАО"}]}}]}`
	_, srv := newFeed(t, []json.RawMessage{json.RawMessage(svc)})
	recs := connectortest.ReadAll(t, source(t, map[string]any{"base_url": srv.URL, "taxonomy": map[string]string{"PSY": "psych-individual"}}, nil), nil)
	require.Len(t, recs, 1)
	require.Equal(t, "svc-1", recs[0].ExternalID)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(recs[0].Data, &doc))
	require.Equal(t, 14.0, doc["minimum_age"])
	org := doc["organization"].(map[string]any)
	ident := org["organization_identifiers"].([]any)[0].(map[string]any)
	require.Equal(t, "INN", ident["identifier_scheme"], "org-id.guide scheme spelled the hub's way")
	require.Equal(t, "org-1/identifier/0", ident["id"], "a nested object without an id gets a stable one")
	attrs := doc["attributes"].([]any)
	require.Equal(t, "psych-individual", attrs[0].(map[string]any)["taxonomy_term_id"], "mapped by the feed's term code")
	require.Equal(t, "legal-help", attrs[1].(map[string]any)["taxonomy_term_id"], "a city term id passes as it is")
	require.Equal(t, "unknown", attrs[2].(map[string]any)["taxonomy_term_id"], "an unmapped term is kept for the validator to report")
	phone := doc["phones"].([]any)[0].(map[string]any)
	require.Equal(t, "svc-1/phone/0", phone["id"])
	require.Equal(t, 12.0, phone["extension"])
	sched := doc["schedules"].([]any)[0].(map[string]any)
	require.Equal(t, "MO,TU", sched["byday"])
	loc := doc["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	require.Equal(t, 55.75, loc["latitude"])
	require.Equal(t, "не число", loc["longitude"], "what the feed wrote goes to the validator")
	addr := loc["addresses"].([]any)[0].(map[string]any)
	require.Equal(t, "ЦАО", addr["okrug"])
	require.Equal(t, "loc-1/addr/0", addr["id"])
}

func TestPagingStyles(t *testing.T) {
	t.Parallel()
	services := demoServices(t)
	for name, p := range map[string]paging{
		"full header": pagingFull, "total_pages only": pagingPagesOnly, "last_page only": pagingLastOnly,
		"no header": pagingNone, "bare array": pagingArray,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFeed(t, services)
			f.paging = p
			recs := connectortest.ReadAll(t, source(t, map[string]any{"base_url": srv.URL, "per_page": 5}, nil), nil)
			require.Len(t, recs, len(services))
			for i, r := range recs {
				require.Equal(t, idOf(services[i]), r.ExternalID)
			}
			var last struct {
				Complete bool `json:"complete"`
			}
			require.NoError(t, json.Unmarshal(recs[len(recs)-1].Position, &last))
			require.True(t, last.Complete, "the last record's position closes the listing")
		})
	}
}

func TestResumesAtItsPage(t *testing.T) {
	t.Parallel()
	services := demoServices(t)
	f, srv := newFeed(t, services)
	opts := map[string]any{"base_url": srv.URL, "per_page": 5}
	all := connectortest.ReadAll(t, source(t, opts, nil), nil)

	// Killed after 12 records: the next run starts at page 3, item 2, as the same snapshot.
	before := len(f.seen())
	src := source(t, opts, nil)
	rest := connectortest.ReadAll(t, src, all[11].Position)
	require.Len(t, rest, len(services)-12)
	require.Equal(t, all[12].ExternalID, rest[0].ExternalID)
	first := f.seen()[before]
	require.Equal(t, "3", first.Query().Get("page"))
	var pos struct {
		RunStart time.Time `json:"run_start"`
		Page     int       `json:"page"`
	}
	require.NoError(t, json.Unmarshal(all[11].Position, &pos))
	require.Equal(t, 3, pos.Page)
	require.Equal(t, "hsds:"+pos.RunStart.Format(time.RFC3339Nano), src.(connectors.Snapshotter).SnapshotID())
}

func TestUnchangedFeedReadsNothingAndChangedReadsAll(t *testing.T) {
	t.Parallel()
	services := demoServices(t)
	f, srv := newFeed(t, services)
	opts := map[string]any{"base_url": srv.URL, "per_page": 50}
	first := source(t, opts, nil)
	all := connectortest.ReadAll(t, first, nil)
	snap := first.(connectors.Snapshotter).SnapshotID()
	require.NotEmpty(t, snap)

	again := source(t, opts, nil)
	require.Empty(t, connectortest.ReadAll(t, again, all[len(all)-1].Position))
	require.Equal(t, snap, again.(connectors.Snapshotter).SnapshotID(), "an unchanged list is the same snapshot")

	// One service modified since: a new full listing, a new snapshot.
	f.set(func(f *feed) { f.modified[idOf(services[2])] = time.Now().Add(time.Hour) })
	changed := source(t, opts, nil)
	recs := connectortest.ReadAll(t, changed, all[len(all)-1].Position)
	require.Len(t, recs, len(services))
	require.NotEqual(t, snap, changed.(connectors.Snapshotter).SnapshotID())

	// One service deleted, none modified: total_items moved, so a new full listing without it.
	f.set(func(f *feed) { f.services = slices.Delete(slices.Clone(f.services), 7, 8) })
	shrunk := source(t, opts, nil)
	rest := connectortest.ReadAll(t, shrunk, recs[len(recs)-1].Position)
	require.Len(t, rest, len(services)-1)
	for _, r := range rest {
		require.NotEqual(t, idOf(services[7]), r.ExternalID)
	}
	require.NotEmpty(t, shrunk.(connectors.Snapshotter).SnapshotID())

	// The feed going down fails the run with a retriable error, whichever call meets it.
	f.set(func(f *feed) { f.status = http.StatusServiceUnavailable })
	broken := source(t, opts, nil)
	err := broken.Open(context.Background(), rest[len(rest)-1].Position)
	if err == nil {
		_, err = broken.Read(context.Background())
	}
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestIncremental(t *testing.T) {
	t.Parallel()
	services := demoServices(t)
	f, srv := newFeed(t, services)
	opts := map[string]any{"base_url": srv.URL, "per_page": 50, "incremental": true, "overlap": "10m"}
	first := source(t, opts, nil)
	all := connectortest.ReadAll(t, first, nil)
	require.Len(t, all, len(services), "the first run has no earlier one: a full list")
	require.NotEmpty(t, first.(connectors.Snapshotter).SnapshotID())
	require.Empty(t, f.seen()[0].Query().Get("modified_after"))

	f.set(func(f *feed) { f.modified[idOf(services[4])] = time.Now().Add(time.Minute) })
	next := source(t, opts, nil)
	start := time.Now()
	recs := connectortest.ReadAll(t, next, all[len(all)-1].Position)
	require.Len(t, recs, 1)
	require.Equal(t, idOf(services[4]), recs[0].ExternalID)
	require.Empty(t, next.(connectors.Snapshotter).SnapshotID(), "an incremental run is not the whole list")
	seen := f.seen()
	since, err := time.Parse(time.RFC3339, seen[len(seen)-1].Query().Get("modified_after"))
	require.NoError(t, err)
	require.WithinDuration(t, start.Add(-10*time.Minute), since, 5*time.Second, "the last complete run's start minus the overlap")
}

func TestFullService(t *testing.T) {
	t.Parallel()
	services := demoServices(t)[:6]
	for _, tc := range []struct {
		mode       string
		nested     bool
		fullParam  bool
		perService bool
	}{
		{"auto", true, true, false},
		{"auto", false, true, false}, // the feed honours full=true
		{"fetch", true, false, true},
		{"param", false, true, false},
	} {
		f, srv := newFeed(t, services)
		f.nested = tc.nested
		recs := connectortest.ReadAll(t, source(t, map[string]any{"base_url": srv.URL, "full_service": tc.mode}, nil), nil)
		require.Len(t, recs, len(services), tc.mode)
		require.Contains(t, string(recs[0].Data), `"service_at_locations":[{`, tc.mode)
		reqs := f.seen()
		require.Equal(t, tc.fullParam, reqs[0].Query().Get("full") == "true", tc.mode)
		require.Equal(t, tc.perService, len(reqs) > len(services), tc.mode)
	}
	// A feed without the full parameter: auto fetches each service that came without its nesting.
	f, _ := newFeed(t, services)
	f.nested = false
	noFull := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Del("full")
		r.URL.RawQuery = q.Encode()
		f.ServeHTTP(w, r)
	})
	srv2 := httptest.NewServer(noFull)
	defer srv2.Close()
	recs := connectortest.ReadAll(t, source(t, map[string]any{"base_url": srv2.URL}, nil), nil)
	require.Len(t, recs, len(services))
	require.Contains(t, string(recs[5].Data), `"service_at_locations":[{`)
	require.Len(t, f.seen(), 1+len(services))
}

func TestTransientErrorsAreRetriable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		retry  string
		wait   time.Duration
	}{
		{http.StatusTooManyRequests, "30", 30 * time.Second},
		{http.StatusServiceUnavailable, "", 0},
		{http.StatusBadGateway, "", 0},
	} {
		f, srv := newFeed(t, demoServices(t))
		f.status, f.retry = tc.status, tc.retry
		src := source(t, map[string]any{"base_url": srv.URL}, nil)
		require.NoError(t, src.Open(context.Background(), nil))
		_, err := src.Read(context.Background())
		require.ErrorIs(t, err, connectors.ErrBackoffRetry, "status %d", tc.status)
		require.Equal(t, tc.wait, fetch.RetryAfterOf(err))
	}
	f, srv := newFeed(t, nil)
	f.status = http.StatusForbidden
	src := source(t, map[string]any{"base_url": srv.URL}, nil)
	require.NoError(t, src.Open(context.Background(), nil))
	_, err := src.Read(context.Background())
	require.Error(t, err)
	require.NotErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestPageThatIsNotJSON(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html><body>Технические работы</body></html>")
	}))
	defer srv.Close()
	src := source(t, map[string]any{"base_url": srv.URL + "/api/"}, nil)
	require.NoError(t, src.Open(context.Background(), nil))
	_, err := src.Read(context.Background())
	require.ErrorIs(t, err, hsds.ErrNotJSON)
	require.ErrorContains(t, err, srv.URL+"/api/services?")
	require.ErrorContains(t, err, "Технические работы")
}

func TestFeedIgnoringPageIsAnError(t *testing.T) {
	t.Parallel()
	services := demoServices(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"contents": services[:3]})
	}))
	defer srv.Close()
	src := source(t, map[string]any{"base_url": srv.URL, "per_page": 3}, nil)
	require.NoError(t, src.Open(context.Background(), nil))
	var err error
	for range 10 {
		if _, err = src.Read(context.Background()); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, hsds.ErrPaging)
}

func TestAuthAndRateLimit(t *testing.T) {
	t.Parallel()
	f, srv := newFeed(t, demoServices(t))
	env := map[string]string{"TRUD_TOKEN": "s3cret"}
	start := time.Now()
	recs := connectortest.ReadAll(t, source(t, map[string]any{
		"base_url": srv.URL, "per_page": 8, "rate_limit": 20,
		"auth": map[string]any{"type": "bearer", "token_env": "TRUD_TOKEN"},
	}, env), nil)
	require.NotEmpty(t, recs)
	n := len(f.seen())
	require.GreaterOrEqual(t, n, 5)
	// n requests at 20/s with a burst of one take at least n-1 intervals of 50 ms.
	require.GreaterOrEqual(t, time.Since(start), time.Duration(n-1)*50*time.Millisecond-10*time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.auth {
		require.Equal(t, "Bearer s3cret", a)
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]map[string]any{
		"no base_url":      {},
		"ftp":              {"base_url": "ftp://x"},
		"per_page":         {"base_url": "https://x", "per_page": -1},
		"full_service":     {"base_url": "https://x", "full_service": "yes"},
		"taxonomy target":  {"base_url": "https://x", "taxonomy": map[string]string{"A": "no-such-term"}},
		"unknown option":   {"base_url": "https://x", "perpage": 5},
		"secret not set":   {"base_url": "https://x", "auth": map[string]any{"type": "bearer", "token_env": "NOPE"}},
		"query in baseurl": {"base_url": "https://x/?a=1"},
	} {
		cfg, err := config.NewSource("x", "hsds", "", opts)
		require.NoError(t, err)
		_, err = hsds.New(cfg, connectors.Deps{Getenv: func(string) string { return "" }})
		require.ErrorIs(t, err, connectors.ErrBadOptions, name)
	}
}

func BenchmarkHSDSRead(b *testing.B) {
	base := demoServices(b)
	services := make([]json.RawMessage, 0, 2000)
	for i := 0; len(services) < 2000; i++ {
		var x map[string]any
		_ = json.Unmarshal(base[i%len(base)], &x)
		x["id"] = "svc-" + strconv.Itoa(i)
		raw, _ := json.Marshal(x)
		services = append(services, raw)
	}
	_, srv := newFeed(b, services)
	opts := map[string]any{"base_url": srv.URL, "per_page": 500}
	n := 0
	for b.Loop() {
		n += len(connectortest.ReadAll(b, source(b, opts, nil), nil))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// Whatever a feed answers, the source neither panics nor emits a record that is not JSON.
func FuzzPage(f *testing.F) {
	f.Add([]byte(`{"total_pages":2,"page_number":1,"contents":[{"id":"a","name":"x","organization":{"id":"o"},"service_at_locations":[{"location":{"id":"l"}}]}]}`))
	f.Add([]byte(`[{"id":"a"},{"id":7},null,"x"]`))
	f.Add([]byte(`{"contents":[{"id":"a","phones":[{"number":5}]}],"last_page":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(body)
		}))
		defer srv.Close()
		src := source(t, map[string]any{"base_url": srv.URL, "full_service": "none"}, nil)
		ctx := context.Background()
		require.NoError(t, src.Open(ctx, nil))
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
