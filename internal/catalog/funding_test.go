package catalog_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
)

const grants = "fpg-grants"

// grantDoc is an organization record as the ngogrants connector builds it from one list row.
func grantDoc(app, inn, name, amount string) map[string]any {
	org := "inn-" + inn
	return map[string]any{
		"id": org, "name": name,
		"organization_identifiers": []any{map[string]any{
			"id": org + "/INN", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": inn,
		}},
		"funding": []any{map[string]any{
			"id": app, "organization_id": org, "source": "Фонд президентских грантов: Серебряный волонтёр",
			"amount": amount, "currency": "RUB", "application_number": app, "project_title": "Серебряный волонтёр",
			"operator": "Фонд президентских грантов", "start_date": "2024-03-01", "end_date": "2025-02-28",
			"status": "реализуется", "region": "г. Москва",
		}},
	}
}

func grantRecord(t testing.TB, app string, doc map[string]any) catalog.Record {
	t.Helper()
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	return catalog.Record{
		Source: grants, ExternalID: app, EntityType: catalog.EntityOrganization, Op: catalog.OpUpsert,
		ContentHash: hex.EncodeToString(sum[:]), Doc: raw, SeenAt: time.Now(),
	}
}

func orgID(inn string) string {
	return catalog.CanonicalID(catalog.EntityOrganization, grants, "inn-"+inn).String()
}

func fundingID(app string) string {
	return catalog.CanonicalID(catalog.EntityFunding, grants, app).String()
}

func TestApplyOrganizationRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r1 := grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7707083893", `АНО "Рядом"`, "2000000.00"))
	chs := b.apply(t, r1)
	require.Equal(t, []string{"organization:created:1", "funding:created:1"}, ops(chs))
	require.Equal(t, orgID("7707083893"), chs[0].EntityID)
	require.Equal(t, fundingID("24-1-000001"), chs[1].EntityID)
	org := decode(t, chs[0].Doc)
	require.NotContains(t, org, "funding", "funding is an entity of its own")
	require.Equal(t, orgID("7707083893"), org["organization_identifiers"].([]any)[0].(map[string]any)["organization_id"])
	f := decode(t, chs[1].Doc)
	require.Equal(t, orgID("7707083893"), f["organization_id"])
	require.Equal(t, "2000000.00", f["amount"])
	require.Equal(t, "funding", f["metadata"].([]any)[0].(map[string]any)["resource_type"])

	// A second grant of the same organization adds only its funding; a replay changes nothing.
	r2 := grantRecord(t, "24-1-000002", grantDoc("24-1-000002", "7707083893", `АНО "Рядом"`, "500000.50"))
	require.Equal(t, []string{"funding:created:1"}, ops(b.apply(t, r2)))
	before, err := b.store.Digest(ctx)
	require.NoError(t, err)
	require.Empty(t, b.apply(t, r1, r2))
	after, err := b.store.Digest(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	require.Len(t, after, 3)

	// The read API shows the organization with both grants.
	got, err := b.store.GetOrganization(ctx, orgID("7707083893"))
	require.NoError(t, err)
	full := decode(t, got)
	require.Equal(t, `АНО "Рядом"`, full["name"])
	require.Len(t, full["funding"], 2)
	amounts := []any{}
	for _, x := range full["funding"].([]any) {
		amounts = append(amounts, x.(map[string]any)["amount"])
	}
	require.ElementsMatch(t, []any{"2000000.00", "500000.50"}, amounts)
	require.Empty(t, full["services"])
	p, err := b.store.ListOrganizations(ctx, catalog.OrganizationFilter{Search: "Рядом"})
	require.NoError(t, err)
	require.Equal(t, 1, p.TotalItems)
	require.NotContains(t, decode(t, p.Contents[0]), "funding", "lists show brief organizations")

	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"service": 0, "organization": 1, "location": 0, "service_at_location": 0,
		"funding": 2, "source_records": 2}, n)
	ids, err := b.store.SourceRecordIDs(ctx, grants)
	require.NoError(t, err)
	require.Equal(t, []string{"24-1-000001", "24-1-000002"}, ids)

	// A new amount changes the funding only; a new name the organization only.
	r1 = grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7707083893", `АНО "Рядом"`, "2100000.00"))
	chs = b.apply(t, r1)
	require.Equal(t, []string{"funding:updated:2"}, ops(chs))
	require.Equal(t, []string{"amount"}, chs[0].ChangedFields)
	r1 = grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7707083893", `АНО «Рядом»`, "2100000.00"))
	chs = b.apply(t, r1)
	require.Equal(t, []string{"organization:updated:2"}, ops(chs))
	require.Equal(t, []string{"name"}, chs[0].ChangedFields)
}

func TestApplyOrganizationRecordDeletes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r1 := grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7707083893", `АНО "Рядом"`, "2000000.00"))
	r2 := grantRecord(t, "24-1-000002", grantDoc("24-1-000002", "7707083893", `АНО "Рядом"`, "500000.00"))
	b.apply(t, r1, r2)

	// One grant goes: the organization keeps the other.
	chs := b.apply(t, del(grants, "24-1-000001"))
	require.Equal(t, []string{"funding:deleted:2"}, ops(chs), "a delete needs no entity type: the stored record says")
	full, err := b.store.GetOrganization(ctx, orgID("7707083893"))
	require.NoError(t, err)
	require.Len(t, decode(t, full)["funding"], 1)

	// The last grant goes, and the organization with it: nothing refers to it any more.
	d := del(grants, "24-1-000002")
	d.EntityType = catalog.EntityOrganization
	chs = b.apply(t, d)
	require.Equal(t, []string{"funding:deleted:2", "organization:deleted:2"}, ops(chs))
	_, err = b.store.GetOrganization(ctx, orgID("7707083893"))
	require.ErrorIs(t, err, catalog.ErrNotFound)
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Zero(t, n["organization"]+n["funding"]+n[catalog.CountSourceRecords])
	require.Empty(t, b.apply(t, del(grants, "24-1-000002")), "deleting again changes nothing")

	// Re-created, versions go on from the tombstones.
	chs = b.apply(t, r2)
	require.Equal(t, []string{"organization:created:3", "funding:created:3"}, ops(chs))

	// Upsert and delete in one batch end deleted.
	r3 := grantRecord(t, "24-1-000003", grantDoc("24-1-000003", "7736207543", "ООО «Яндекс»", "1.00"))
	chs = b.apply(t, r3, del(grants, "24-1-000003"))
	require.Equal(t, []string{"organization:created:1", "funding:created:1", "funding:deleted:2", "organization:deleted:2"}, ops(chs))
}

// TestApplyOrganizationRecordMoves: a row whose INN is corrected names another organization; the
// first one goes once no row names it.
func TestApplyOrganizationRecordMoves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.apply(t,
		grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7707083893", `АНО "Рядом"`, "1.00")),
		grantRecord(t, "24-1-000002", grantDoc("24-1-000002", "7707083893", `АНО "Рядом"`, "2.00")))

	chs := b.apply(t, grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7736207543", `АНО "Рядом"`, "1.00")))
	require.Equal(t, []string{"organization:created:1", "funding:updated:2"}, ops(chs), "the first organization keeps its other grant")
	require.Equal(t, orgID("7736207543"), decode(t, chs[1].Doc)["organization_id"])

	chs = b.apply(t, grantRecord(t, "24-1-000002", grantDoc("24-1-000002", "7736207543", `АНО "Рядом"`, "2.00")))
	require.Equal(t, []string{"funding:updated:2", "organization:deleted:2"}, ops(chs))
	require.Equal(t, orgID("7707083893"), chs[1].EntityID)
	full, err := b.store.GetOrganization(ctx, orgID("7736207543"))
	require.NoError(t, err)
	require.Len(t, decode(t, full)["funding"], 2)
}

// TestApplyOrganizationServedStays: an organization that a service of the same source uses stays
// when its last grant goes.
func TestApplyOrganizationServedStays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := serviceDoc("SVC-1", "Серебряный волонтёр", "Волонтёрская помощь пожилым", "inn-7707083893", `АНО "Рядом"`, "pensioners-activities")
	b.apply(t, upsert(t, grants, svc), grantRecord(t, "24-1-000001", grantDoc("24-1-000001", "7707083893", `АНО "Рядом"`, "1.00")))
	chs := b.apply(t, del(grants, "24-1-000001"))
	require.Equal(t, []string{"funding:deleted:2"}, ops(chs))
	n, err := b.store.Count(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), n["organization"])

	// And the service record's delete leaves the organization, as service deletes always have.
	chs = b.apply(t, del(grants, "SVC-1"))
	require.Equal(t, []string{"service_at_location:deleted:2", "service:deleted:2"}, ops(chs))
}

func TestApplyRefusesInvalidOrganizationRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	good := grantRecord(t, "A-1", grantDoc("A-1", "7707083893", "x", "1.00"))
	noID := grantDoc("A-2", "7707083893", "x", "1.00")
	delete(noID, "id")
	fundingNotArray := grantDoc("A-3", "7707083893", "x", "1.00")
	fundingNotArray["funding"] = map[string]any{"id": "A-3"}
	fundingNoID := grantDoc("A-4", "7707083893", "x", "1.00")
	delete(fundingNoID["funding"].([]any)[0].(map[string]any), "id")
	resident := grantRecord(t, "A-5", grantDoc("A-5", "7707083893", "x", "1.00"))
	resident.EntityType = "resident"
	for name, rec := range map[string]catalog.Record{
		"no id":             grantRecord(t, "A-2", noID),
		"funding not array": grantRecord(t, "A-3", fundingNotArray),
		"funding no id":     grantRecord(t, "A-4", fundingNoID),
		"unknown entity":    resident,
		"not an object":     {Source: grants, ExternalID: "A-6", EntityType: catalog.EntityOrganization, Op: catalog.OpUpsert, ContentHash: "h", Doc: json.RawMessage(`"x"`)},
	} {
		tx, err := b.db.Pool.Begin(ctx)
		require.NoError(t, err)
		_, err = b.store.Apply(ctx, tx, []catalog.Record{good, rec})
		require.ErrorIs(t, err, catalog.ErrInvalidRecord, name)
		require.NoError(t, tx.Rollback(ctx))
	}
}
