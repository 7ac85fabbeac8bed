package quality_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/pgtest"
	"socialhub/internal/quality"
	"socialhub/internal/validate"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db      *pgtest.DB
	catalog *catalog.Store
	store   *quality.Store
	reg     *prometheus.Registry
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, catalog.Migrations(), quality.Migrations())
	cat := catalog.NewStore(db.Pool)
	reg := prometheus.NewRegistry()
	return testBundle{db: db, catalog: cat, reg: reg, store: quality.New(quality.Options{
		Pool: db.Pool, Catalog: cat, Registerer: reg, Interval: 10 * time.Millisecond,
	})}
}

// service is a service record document; without is the details it leaves out: "phone",
// "address", "hours", "coordinates".
func service(id string, without ...string) map[string]any {
	skip := map[string]bool{}
	for _, w := range without {
		skip[w] = true
	}
	// Each service its own name and point, so entity resolution keeps them apart.
	n := int(id[len(id)-1] - '0')
	names := []string{"Комната прохлады", "Юридическая консультация", "Семейная медиация", "Группа здоровья", "Клуб «Серебряный возраст»"}
	loc := map[string]any{"id": "ORG-1/loc/" + id, "location_type": "physical", "name": "Филиал " + id}
	if !skip["coordinates"] {
		loc["latitude"], loc["longitude"] = 55.60+0.02*float64(n), 37.70+0.03*float64(n)
	}
	if !skip["address"] {
		loc["addresses"] = []any{map[string]any{
			"id": id + "/addr", "address_1": fmt.Sprintf("ул. Братиславская, д. %d", 10*n+3), "city": "Москва", "country": "RU", "address_type": "physical",
		}}
	}
	d := map[string]any{
		"id": id, "name": names[n%len(names)], "status": "active",
		"organization":         map[string]any{"id": "ORG-1", "name": "ГБУ ТЦСО «Марьино»"},
		"service_at_locations": []any{map[string]any{"id": id + "/sal", "location": loc}},
	}
	if !skip["phone"] {
		d["phones"] = []any{map[string]any{"id": id + "/phone", "number": "+74951234567"}}
	}
	if !skip["hours"] {
		loc["schedules"] = []any{map[string]any{"id": id + "/schedule", "description": "пн-пт 9:00–18:00"}}
	}
	return d
}

func (b testBundle) apply(t testing.TB, source string, docs ...map[string]any) {
	t.Helper()
	ctx := context.Background()
	var recs []catalog.Record
	for _, d := range docs {
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		recs = append(recs, catalog.Record{
			Source: source, ExternalID: d["id"].(string), EntityType: catalog.EntityService, Op: catalog.OpUpsert,
			ContentHash: hex.EncodeToString(sum[:]), Doc: raw, SeenAt: time.Now(),
		})
	}
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = b.catalog.Apply(ctx, tx, recs)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

func TestAddCountsEachPositionOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const topic = "socialhub.raw"
	batch := []validate.Outcome{
		{Topic: topic, Partition: 0, Offset: 0, Source: "dszn", Valid: true},
		{Topic: topic, Partition: 0, Offset: 1, Source: "dszn", Fields: []string{"service_at_locations.0.location.latitude", "service_at_locations.1.location.latitude", "status"}},
		{Topic: topic, Partition: 1, Offset: 0, Source: "dszn", Fields: []string{"(envelope)"}},
		{Topic: topic, Partition: 1, Offset: 1, Source: "ngo", Valid: true},
	}
	require.NoError(t, b.store.Add(ctx, batch))
	// The same batch again (the stage crashed before committing), and the next one overlapping it.
	require.NoError(t, b.store.Add(ctx, batch))
	require.NoError(t, b.store.Add(ctx, []validate.Outcome{
		batch[3],
		{Topic: topic, Partition: 1, Offset: 2, Source: "ngo", Fields: []string{"phones.0.number"}},
	}))

	q, err := b.store.SourceQuality(ctx, "dszn")
	require.NoError(t, err)
	require.Equal(t, int64(3), q.Read)
	require.Equal(t, int64(1), q.Valid)
	require.Equal(t, int64(2), q.Rejected)
	require.Equal(t, map[string]int64{"service_at_locations.*.location.latitude": 1, "status": 1, "(envelope)": 1}, q.RejectedByField)

	q, err = b.store.SourceQuality(ctx, "ngo")
	require.NoError(t, err)
	require.Equal(t, int64(2), q.Read)
	require.Equal(t, map[string]int64{"phones.*.number": 1}, q.RejectedByField)
	require.Equal(t, int64(0), q.Catalog.Records)

	_, err = b.store.SourceQuality(ctx, "nobody")
	require.ErrorIs(t, err, quality.ErrUnknownSource)
	require.NoError(t, b.store.Add(ctx, nil))
}

func TestCatalogShares(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.apply(t, "dszn",
		service("S1"),
		service("S2", "phone"),
		service("S3", "address", "coordinates"),
		service("S4", "hours", "phone"),
	)
	// Another organization elsewhere: entity resolution keeps it apart from dszn's.
	x := service("X1", "hours")
	x["name"] = "Юридическая консультация"
	x["organization"] = map[string]any{"id": "ORG-9", "name": "АНО «Другой берег»"}
	loc := x["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	loc["id"], loc["name"], loc["latitude"], loc["longitude"] = "ORG-9/loc/X1", "Приёмная", 55.86, 37.48
	loc["addresses"].([]any)[0].(map[string]any)["address_1"] = "Ленинградское ш., д. 112"
	b.apply(t, "other", x)

	q, err := b.store.SourceQuality(ctx, "dszn")
	require.NoError(t, err)
	require.Equal(t, int64(4), q.Catalog.Records)
	require.Equal(t, map[string]int64{"phone": 2, "address": 3, "hours": 3, "coordinates": 3}, q.Catalog.With)
	require.Equal(t, map[string]float64{"phone": 0.5, "address": 0.75, "hours": 0.75, "coordinates": 0.75}, q.Catalog.Share)
	require.Zero(t, q.Read, "nothing validated: the catalog alone makes the source known")

	all, err := b.store.Qualities(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "dszn", all[0].Source)
	require.Equal(t, "other", all[1].Source)
	require.Equal(t, 0.0, all[1].Catalog.Share["hours"])

	// The gauge follows the catalog.
	require.NoError(t, b.store.Refresh(ctx))
	g, err := b.reg.Gather()
	require.NoError(t, err)
	require.Len(t, g, 1)
	require.Equal(t, "socialhub_catalog_share", g[0].GetName())
	require.Len(t, g[0].GetMetric(), 8)
	require.Equal(t, 0.5, gauge(t, b.reg, "dszn", "phone"))
	require.Equal(t, 1.0, gauge(t, b.reg, "other", "phone"))
}

func gauge(t testing.TB, reg *prometheus.Registry, source, field string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == source && labels["field"] == field {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no gauge for %s %s", source, field)
	return 0
}

func TestRunRefreshesGauge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.store.Run(ctx) }()
	b.apply(t, "dszn", service("S1", "coordinates"))
	require.Eventually(t, func() bool {
		mfs, err := b.reg.Gather()
		return err == nil && len(mfs) == 1 && len(mfs[0].GetMetric()) == 4
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 0.0, gauge(t, b.reg, "dszn", "coordinates"))
	require.Equal(t, 1.0, gauge(t, b.reg, "dszn", "address"))
	cancel()
	require.NoError(t, <-done)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.apply(t, "дсзн", service("S1"))
	require.NoError(t, b.store.Add(ctx, []validate.Outcome{{Topic: "raw", Source: "дсзн", Valid: true}}))
	mux := http.NewServeMux()
	quality.NewHandler(b.store).Mount(mux)

	get := func(path string) (*http.Response, map[string]any) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
		require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
		require.NotContains(t, rec.Body.String(), `\u04`, "Russian unescaped")
		return rec.Result(), body
	}
	resp, body := get("/v1/quality")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, body["sources"], 1)
	resp, body = get("/v1/quality/%D0%B4%D1%81%D0%B7%D0%BD")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "дсзн", body["source"])
	require.Equal(t, 1.0, body["read"])
	require.Equal(t, 1.0, body["catalog"].(map[string]any)["share"].(map[string]any)["phone"])
	resp, body = get("/v1/quality/nobody")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, body["error"], "unknown source")
}
