package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
)

const src = "dszn-points"

func TestApplyCreates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	chs := b.apply(t, upsert(t, src, mediation("DSZN-000017")))
	require.Equal(t, []string{
		"organization:created:1", "location:created:1", "service:created:1", "service_at_location:created:1",
	}, ops(chs))

	svcID := catalog.CanonicalID(catalog.EntityService, src, "DSZN-000017").String()
	orgID := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-12").String()
	locID := catalog.CanonicalID(catalog.EntityLocation, src, "ORG-12/loc/Марьино").String()
	salID := catalog.CanonicalID(catalog.EntityServiceAtLocation, src, "DSZN-000017/sal/0").String()
	require.Equal(t, []string{orgID, locID, svcID, salID},
		[]string{chs[0].EntityID, chs[1].EntityID, chs[2].EntityID, chs[3].EntityID})

	svc := decode(t, chs[2].Doc)
	require.Equal(t, svcID, svc["id"])
	require.Equal(t, orgID, svc["organization_id"])
	require.NotContains(t, svc, "organization")
	require.NotContains(t, svc, "service_at_locations")
	phone := svc["phones"].([]any)[0].(map[string]any)
	require.Equal(t, catalog.CanonicalID("phone", src, "DSZN-000017/phone/0").String(), phone["id"])
	require.Equal(t, svcID, phone["service_id"])
	require.Equal(t, svcID, svc["schedules"].([]any)[0].(map[string]any)["service_id"])
	attr := svc["attributes"].([]any)[0].(map[string]any)
	require.Equal(t, svcID, attr["link_id"])
	require.Equal(t, "service", attr["link_entity"])
	require.NotEmpty(t, attr["link_type"])
	require.Equal(t, "Семейная медиация", attr["taxonomy_term"].(map[string]any)["name"], "term filled from the city taxonomy")
	meta := svc["metadata"].([]any)[0].(map[string]any)
	require.Equal(t, svcID, meta["resource_id"])
	require.Equal(t, "service", meta["resource_type"])
	require.Equal(t, "create", meta["last_action_type"])
	require.Equal(t, src, meta["updated_by"])
	require.NotEmpty(t, meta["last_action_date"])

	org := decode(t, chs[0].Doc)
	require.Equal(t, orgID, org["organization_identifiers"].([]any)[0].(map[string]any)["organization_id"])
	loc := decode(t, chs[1].Doc)
	require.Equal(t, locID, loc["addresses"].([]any)[0].(map[string]any)["location_id"])
	require.Equal(t, "ЮВАО", loc["addresses"].([]any)[0].(map[string]any)["okrug"])
	sal := decode(t, chs[3].Doc)
	require.Equal(t, svcID, sal["service_id"])
	require.Equal(t, locID, sal["location_id"])
	require.NotContains(t, sal, "location")

	n, err := b.store.Count(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"service": 1, "organization": 1, "location": 1, "service_at_location": 1, "funding": 0, "source_records": 1}, n)
	ids, err := b.store.SourceRecordIDs(context.Background(), src)
	require.NoError(t, err)
	require.Equal(t, []string{"DSZN-000017"}, ids)
}

func TestApplyReplayIsNoOp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := upsert(t, src, mediation("DSZN-000017"))
	require.Len(t, b.apply(t, rec), 4)
	require.Empty(t, b.apply(t, rec))
	require.Empty(t, b.apply(t, rec, rec))

	// Another record with the same organization and location only adds its own service.
	chs := b.apply(t, upsert(t, src, mediation("DSZN-000018")))
	require.Equal(t, []string{"service:created:1", "service_at_location:created:1"}, ops(chs))

	// The digest sees every entity, and a replay leaves it as it was.
	ctx := context.Background()
	before, err := b.store.Digest(ctx)
	require.NoError(t, err)
	require.Len(t, before, 6)
	svc := before["service/"+catalog.CanonicalID(catalog.EntityService, src, "DSZN-000018").String()]
	require.Equal(t, int64(1), svc.Version)
	require.NotEmpty(t, svc.ContentHash)
	b.apply(t, rec)
	after, err := b.store.Digest(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	doc := mediation("DSZN-000018")
	doc["name"] = "Медиация при разводе"
	b.apply(t, upsert(t, src, doc))
	after, err = b.store.Digest(ctx)
	require.NoError(t, err)
	require.NotEqual(t, before, after)
}

func TestApplyUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := mediation("DSZN-000017")
	b.apply(t, upsert(t, src, doc))

	doc = mediation("DSZN-000017")
	doc["name"] = "Семейная медиация и консультации"
	doc["alert"] = "Временно по записи"
	chs := b.apply(t, upsert(t, src, doc))
	require.Equal(t, []string{"service:updated:2"}, ops(chs))
	require.Equal(t, []string{"alert", "name"}, chs[0].ChangedFields)
	meta := decode(t, chs[0].Doc)["metadata"].([]any)[0].(map[string]any)
	require.Equal(t, "update", meta["last_action_type"])
	require.Equal(t, "alert,name", meta["field_name"])

	// The organization changes for both of its services' search, the service itself does not.
	doc = mediation("DSZN-000017")
	doc["name"] = "Семейная медиация и консультации"
	doc["alert"] = "Временно по записи"
	doc["organization"].(map[string]any)["name"] = "ГБУ ТЦСО «Марьино» (филиал Люблино)"
	chs = b.apply(t, upsert(t, src, doc))
	require.Equal(t, []string{"organization:updated:2"}, ops(chs))
	require.Equal(t, []string{"name"}, chs[0].ChangedFields)
	p, err := b.store.ListServices(context.Background(), catalog.ServiceFilter{Search: "Люблино"})
	require.NoError(t, err)
	require.Equal(t, 1, p.TotalItems)

	// Two versions of one record in a batch chain: both apply, in order.
	d1, d2 := mediation("DSZN-000017"), mediation("DSZN-000017")
	d1["name"], d2["name"] = "Вариант 1", "Вариант 2"
	chs = b.apply(t, upsert(t, src, d1), upsert(t, src, d2))
	require.Equal(t, []string{"organization:updated:3", "service:updated:3", "service:updated:4"}, ops(chs))
	got, err := b.store.GetService(context.Background(), chs[2].EntityID)
	require.NoError(t, err)
	require.Equal(t, "Вариант 2", decode(t, got)["name"])
}

func TestApplyDropsServiceAtLocations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := mediation("DSZN-000017")
	second := map[string]any{"id": "DSZN-000017/sal/1", "location": map[string]any{
		"id": "ORG-12/loc/Люблино", "location_type": "physical", "name": "ТЦСО, отделение Люблино",
	}}
	doc["service_at_locations"] = append(doc["service_at_locations"].([]any), second)
	require.Len(t, b.apply(t, upsert(t, src, doc)), 6)

	doc = mediation("DSZN-000017")
	chs := b.apply(t, upsert(t, src, doc))
	require.Equal(t, []string{"service_at_location:deleted:2"}, ops(chs))
	require.Equal(t, catalog.CanonicalID(catalog.EntityServiceAtLocation, src, "DSZN-000017/sal/1").String(), chs[0].EntityID)
	n, err := b.store.Count(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), n["service_at_location"])
	require.Equal(t, int64(2), n["location"], "locations stay")
}

func TestApplyDeletes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.apply(t, upsert(t, src, mediation("DSZN-000017")), upsert(t, src, mediation("DSZN-000018")))

	chs := b.apply(t, del(src, "DSZN-000017"))
	require.Equal(t, []string{"service_at_location:deleted:2", "service:deleted:2"}, ops(chs))
	require.Nil(t, chs[1].Doc)
	_, err := b.store.GetService(ctx, chs[1].EntityID)
	require.ErrorIs(t, err, catalog.ErrNotFound)
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"service": 1, "organization": 1, "location": 1, "service_at_location": 1, "funding": 0, "source_records": 1}, n)
	ids, err := b.store.SourceRecordIDs(ctx, src)
	require.NoError(t, err)
	require.Equal(t, []string{"DSZN-000018"}, ids)

	require.Empty(t, b.apply(t, del(src, "DSZN-000017")), "deleting again changes nothing")
	require.Empty(t, b.apply(t, del(src, "NEVER-SEEN")))

	// Re-created, the service's version goes on from where the delete left it.
	chs = b.apply(t, upsert(t, src, mediation("DSZN-000017")))
	require.Equal(t, []string{"service:created:3", "service_at_location:created:3"}, ops(chs))

	// Upsert then delete in one batch ends deleted.
	chs = b.apply(t, upsert(t, src, mediation("DSZN-000019")), del(src, "DSZN-000019"))
	require.Equal(t, []string{"service:created:1", "service_at_location:created:1",
		"service_at_location:deleted:2", "service:deleted:2"}, ops(chs))
	n, err = b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n["service"])
	require.Equal(t, int64(2), n["source_records"])
}

func TestApplyRefusesInvalidRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	good := upsert(t, src, mediation("DSZN-000017"))
	noOrg := mediation("DSZN-000020")
	delete(noOrg, "organization")
	noLocation := mediation("DSZN-000021")
	delete(noLocation["service_at_locations"].([]any)[0].(map[string]any), "location")
	noPhoneID := mediation("DSZN-000022")
	delete(noPhoneID["phones"].([]any)[0].(map[string]any), "id")
	mismatch := upsert(t, src, mediation("DSZN-000023"))
	mismatch.ExternalID = "DSZN-999999"

	for name, rec := range map[string]catalog.Record{
		"malformed JSON": {Source: src, ExternalID: "X", Op: catalog.OpUpsert, ContentHash: "h", Doc: json.RawMessage(`{"id":`)},
		"not an object":  {Source: src, ExternalID: "X", Op: catalog.OpUpsert, ContentHash: "h", Doc: json.RawMessage(`[1]`)},
		"null":           {Source: src, ExternalID: "X", Op: catalog.OpUpsert, ContentHash: "h", Doc: json.RawMessage(`null`)},
		"unknown op":     {Source: src, ExternalID: "X", Op: "merge"},
		"no document":    {Source: src, ExternalID: "X", Op: catalog.OpUpsert, ContentHash: "h"},
		"no source":      {ExternalID: "X", Op: catalog.OpDelete},
		"no org":         upsert(t, src, noOrg),
		"no location":    upsert(t, src, noLocation),
		"no phone id":    upsert(t, src, noPhoneID),
		"id mismatch":    mismatch,
	} {
		tx, err := b.db.Pool.Begin(ctx)
		require.NoError(t, err)
		_, err = b.store.Apply(ctx, tx, []catalog.Record{good, rec})
		require.ErrorIs(t, err, catalog.ErrInvalidRecord, name)
		require.NoError(t, tx.Rollback(ctx))
	}
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Zero(t, n["source_records"])
}

// BenchmarkApply applies batches of 500 new records (50 organizations shared between them), each
// batch in its own transaction, as the resolve stage does.
func BenchmarkApply(b *testing.B) {
	tb := setup(b)
	ctx := context.Background()
	const batch, orgs = 500, 50
	batches := make([][]catalog.Record, b.N)
	for i := range batches {
		batches[i] = make([]catalog.Record, batch)
		for j := range batches[i] {
			n := i*batch + j
			doc := serviceDoc(fmt.Sprintf("BENCH-%07d", n), fmt.Sprintf("Услуга %d", n), "Психологическая помощь взрослым и детям",
				fmt.Sprintf("ORG-%d", n%orgs), fmt.Sprintf("Организация %d", n%orgs), "psychological-help")
			batches[i][j] = upsert(b, src, doc)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		tx, err := tb.db.Pool.Begin(ctx)
		require.NoError(b, err)
		_, err = tb.store.Apply(ctx, tx, batches[i])
		require.NoError(b, err)
		require.NoError(b, tx.Commit(ctx))
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}

// TestApplyConcurrentSharedEntities: two transactions (two partitions of the resolve stage) apply
// records of one organization at once. The organization and its location are created once, by
// whichever commits first; the other sees them and only adds its own service.
func TestApplyConcurrentSharedEntities(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	tx1, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx1.Rollback(ctx) }()
	chs1, err := b.store.Apply(ctx, tx1, []catalog.Record{upsert(t, src, mediation("DSZN-1"))})
	require.NoError(t, err)
	require.Equal(t, []string{"organization:created:1", "location:created:1", "service:created:1",
		"service_at_location:created:1"}, ops(chs1))

	conn, err := b.db.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	pid := conn.Conn().PgConn().PID()
	type result struct {
		chs []catalog.Change
		err error
	}
	done := make(chan result, 1)
	go func() {
		tx2, err := conn.Begin(ctx)
		if err != nil {
			done <- result{err: err}
			return
		}
		chs, err := b.store.Apply(ctx, tx2, []catalog.Record{upsert(t, src, mediation("DSZN-2"))})
		if err == nil {
			err = tx2.Commit(ctx)
		} else {
			_ = tx2.Rollback(ctx)
		}
		done <- result{chs, err}
	}()
	// Let the second transaction reach the point where it waits for the first (if it finished
	// instead, it read the catalog without the first one's entities: the assertion below fails).
	var r result
	finished := false
	require.Eventually(t, func() bool {
		select {
		case r = <-done:
			finished = true
			return true
		default:
		}
		var waiting bool
		err := b.db.Pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, tx1.Commit(ctx))
	if !finished {
		r = <-done
	}
	require.NoError(t, r.err)
	require.Equal(t, []string{"service:created:1", "service_at_location:created:1"}, ops(r.chs),
		"the organization and location were created by the first transaction")
}

// TestOrganizationNameInServiceSearch: services are found by their organization's current name,
// also those no batch rewrote, whether the name changed in the batch that renamed it or went back
// and forth within one batch; an organization rewritten for another field leaves them as they are.
func TestOrganizationNameInServiceSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	withOrg := func(id, name, site string) catalog.Record {
		doc := mediation(id)
		org := doc["organization"].(map[string]any)
		org["name"] = name
		if site != "" {
			org["website"] = site
		}
		return upsert(t, src, doc)
	}
	found := func(q string) int {
		t.Helper()
		p, err := b.store.ListServices(ctx, catalog.ServiceFilter{Search: q})
		require.NoError(t, err)
		return p.TotalItems
	}
	b.apply(t, withOrg("DSZN-1", "ГБУ ТЦСО «Марьино»", ""), withOrg("DSZN-2", "ГБУ ТЦСО «Марьино»", ""))
	require.Equal(t, 2, found("Марьино"))

	chs := b.apply(t, withOrg("DSZN-2", "ГБУ ТЦСО «Марьино»", "https://marino.example"))
	require.Equal(t, []string{"organization:updated:2"}, ops(chs))
	require.Equal(t, 2, found("Марьино"))
	b.requireOrgNamesCurrent(t)

	chs = b.apply(t, withOrg("DSZN-2", "ГБУ ТЦСО «Люблино»", ""), withOrg("DSZN-2", "ГБУ ТЦСО «Марьино»", ""))
	require.Equal(t, []string{"organization:updated:3", "organization:updated:4"}, ops(chs))
	require.Equal(t, 2, found("Марьино"))
	require.Zero(t, found("Люблино"))
	b.requireOrgNamesCurrent(t)

	b.apply(t, withOrg("DSZN-3", "ГБУ ТЦСО «Люблино»", ""))
	require.Equal(t, 3, found("Люблино"))
	require.Zero(t, found("Марьино"))
	b.requireOrgNamesCurrent(t)

	// A deleted record leaves its service to the others of the catalog: the rest keep the name.
	b.apply(t, catalog.Record{Source: src, ExternalID: "DSZN-1", Op: catalog.OpDelete, SeenAt: time.Now()})
	require.Equal(t, 2, found("Люблино"))
	b.requireOrgNamesCurrent(t)
}
