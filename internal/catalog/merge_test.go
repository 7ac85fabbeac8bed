package catalog_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
)

// inTx runs f in a transaction and commits.
func (b testBundle) inTx(t testing.TB, f func(tx pgx.Tx) error) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.NoError(t, f(tx))
	require.NoError(t, tx.Commit(ctx))
}

// apartWorld is the department's mediation service and the feed's, whose organizations have
// different INNs: resolution keeps the organizations, and so the services, apart.
func apartWorld(t *testing.T) (testBundle, uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID) {
	db := setup(t).db
	b := testBundle{db: db, store: catalog.NewStore(db.Pool, trusted())}
	b.apply(t, upsert(t, src, mediation("DSZN-000017")))
	b.apply(t, upsert(t, feed, otherINN(feedDoc("feed-svc-1"))))
	return b, catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-12"),
		catalog.CanonicalID(catalog.EntityOrganization, feed, "feed-org-1"),
		catalog.CanonicalID(catalog.EntityService, src, "DSZN-000017"),
		catalog.CanonicalID(catalog.EntityService, feed, "feed-svc-1")
}

func otherINN(doc map[string]any) map[string]any {
	doc["organization"].(map[string]any)["organization_identifiers"].([]any)[0].(map[string]any)["identifier"] = "7700000001"
	return doc
}

func TestMergeRedirectsAndSplitRestoresOriginalIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, deptOrg, feedOrg, deptSvc, feedSvc := apartWorld(t)
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n[catalog.EntityOrganization])

	// A reviewer says the two organizations are one.
	var chs []catalog.Change
	b.inTx(t, func(tx pgx.Tx) error {
		chs, err = b.store.Merge(ctx, tx, deptOrg, feedOrg, "оператор")
		return err
	})
	b.requireOrgNamesCurrent(t)
	var merged *catalog.Change
	for i, c := range chs {
		if c.Op == catalog.ChangeMerged {
			merged = &chs[i]
		}
	}
	require.NotNil(t, merged, "changes: %v", ops(chs))
	require.Equal(t, feedOrg.String(), merged.EntityID)
	require.Equal(t, deptOrg.String(), decode(t, merged.Doc)["merged_into"])
	require.Contains(t, ops(chs), "organization:updated:2")

	_, err = b.store.GetOrganization(ctx, feedOrg.String())
	var redirect *catalog.RedirectError
	require.ErrorAs(t, err, &redirect)
	require.ErrorIs(t, err, catalog.ErrMerged)
	require.Equal(t, deptOrg, redirect.To)
	org := decode(t, get(t, b.store.GetOrganization, deptOrg))
	require.Equal(t, "marino@social.mos.ru", org["email"], "survivorship takes the feed's e-mail now")
	svc := decode(t, get(t, b.store.GetService, feedSvc))
	require.Equal(t, deptOrg.String(), svc["organization_id"], "the feed's service belongs to the winner")
	n, err = b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n[catalog.EntityOrganization])

	// The same services of one organization now: the reviewer merges them as well.
	b.inTx(t, func(tx pgx.Tx) error {
		chs, err = b.store.Merge(ctx, tx, deptSvc, feedSvc, "оператор")
		return err
	})
	b.requireOrgNamesCurrent(t)
	_, err = b.store.GetService(ctx, feedSvc.String())
	require.ErrorAs(t, err, &redirect)
	require.Equal(t, deptSvc, redirect.To)
	svc = decode(t, get(t, b.store.GetService, deptSvc))
	require.Len(t, svc["service_at_locations"].([]any), 2, "the feed's point follows its service")

	// Unmerge: both come back under their original ids.
	var newID uuid.UUID
	b.inTx(t, func(tx pgx.Tx) error {
		chs, newID, err = b.store.Split(ctx, tx, deptSvc, nil, "оператор")
		return err
	})
	b.requireOrgNamesCurrent(t)
	require.Equal(t, feedSvc, newID)
	require.Contains(t, ops(chs), "service:created:4", "created again, its version after the merge's (created, updated by the organizations' merge, merged)")
	svc = decode(t, get(t, b.store.GetService, feedSvc))
	require.Len(t, svc["service_at_locations"].([]any), 1)
	// The split is remembered: the feed withdraws its service and lists it again, and resolution,
	// which would merge the two on its own (one organization, one name), keeps them apart.
	b.apply(t, del(feed, "feed-svc-1"))
	b.apply(t, upsert(t, feed, otherINN(feedDoc("feed-svc-1"))))
	svc = decode(t, get(t, b.store.GetService, feedSvc))
	require.Equal(t, deptOrg.String(), svc["organization_id"])
	n, err = b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n[catalog.EntityService])
	b.inTx(t, func(tx pgx.Tx) error {
		chs, newID, err = b.store.Split(ctx, tx, deptOrg, nil, "оператор")
		return err
	})
	b.requireOrgNamesCurrent(t)
	require.Equal(t, feedOrg, newID)
	svc = decode(t, get(t, b.store.GetService, feedSvc))
	require.Equal(t, feedOrg.String(), svc["organization_id"])
	org = decode(t, get(t, b.store.GetOrganization, deptOrg))
	require.NotContains(t, org, "email", "the feed's e-mail left with the feed")
	n, err = b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n[catalog.EntityOrganization])
	require.Equal(t, int64(2), n[catalog.EntityService])

	// Nothing left to undo, and the decision is remembered: the feed's record changing does not
	// bring the pair together again.
	b.inTx(t, func(tx pgx.Tx) error {
		_, _, err := b.store.Split(ctx, tx, deptOrg, nil, "оператор")
		require.ErrorIs(t, err, catalog.ErrBadDecision)
		return nil
	})
	doc := otherINN(feedDoc("feed-svc-1"))
	doc["description"] = "Медиация для семей, обновлено"
	b.apply(t, upsert(t, feed, doc))
	n, err = b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n[catalog.EntityOrganization])
}

func TestMergeRefusesWhatCannotBe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, deptOrg, _, deptSvc, _ := apartWorld(t)
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := b.store.Merge(ctx, tx, deptOrg, deptSvc, "оператор")
		require.ErrorIs(t, err, catalog.ErrBadDecision, "an organization and a service")
		_, err = b.store.Merge(ctx, tx, deptOrg, deptOrg, "оператор")
		require.ErrorIs(t, err, catalog.ErrBadDecision, "one already")
		_, err = b.store.Merge(ctx, tx, deptOrg, uuid.New(), "оператор")
		require.ErrorIs(t, err, catalog.ErrNotFound)
		return nil
	})
}

func get(t testing.TB, read func(context.Context, string) (json.RawMessage, error), id uuid.UUID) []byte {
	t.Helper()
	doc, err := read(context.Background(), id.String())
	require.NoError(t, err)
	return doc
}

// An automatic merge is undone like a reviewer's: the member that joined comes back under its
// own id, and stays apart.
func TestSplitUndoesAnAutomaticMerge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := setup(t).db
	b := testBundle{db: db, store: catalog.NewStore(db.Pool, trusted())}
	b.apply(t, upsert(t, src, mediation("DSZN-000017")), upsert(t, feed, feedDoc("feed-svc-1")))
	deptSvc := catalog.CanonicalID(catalog.EntityService, src, "DSZN-000017")
	feedSvc := catalog.CanonicalID(catalog.EntityService, feed, "feed-svc-1")
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n[catalog.EntityService], "merged by resolution")

	var newID uuid.UUID
	var chs []catalog.Change
	b.inTx(t, func(tx pgx.Tx) error {
		chs, newID, err = b.store.Split(ctx, tx, deptSvc, nil, "оператор")
		return err
	})
	require.Equal(t, feedSvc, newID)
	require.Contains(t, ops(chs), "service:created:1")
	svc := decode(t, get(t, b.store.GetService, feedSvc))
	require.Equal(t, "Медиация для семей", svc["description"])
	require.Len(t, svc["service_at_locations"].([]any), 1, "the feed's point went with it")
	svc = decode(t, get(t, b.store.GetService, deptSvc))
	require.Len(t, svc["service_at_locations"].([]any), 1)
}
