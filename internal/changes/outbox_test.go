package changes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// entityID is a canonical id like the ones the catalog hands out.
func entityID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func serviceJSON(id, name string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"name":%q,"status":"active"}`, id, name))
}

func created(n int, name string) catalog.Change {
	id := entityID(n)
	return catalog.Change{EntityType: catalog.EntityService, EntityID: id, Op: catalog.ChangeCreated, Version: 1, Doc: serviceJSON(id, name)}
}

func updated(n int, version int64, name string) catalog.Change {
	id := entityID(n)
	return catalog.Change{
		EntityType: catalog.EntityService, EntityID: id, Op: catalog.ChangeUpdated, Version: version,
		Doc: serviceJSON(id, name), ChangedFields: []string{"name"},
	}
}

func deleted(n int, version int64) catalog.Change {
	return catalog.Change{EntityType: catalog.EntityService, EntityID: entityID(n), Op: catalog.ChangeDeleted, Version: version}
}

// appendCommitted appends chs in a transaction of its own and commits it.
func appendCommitted(t testing.TB, db *pgtest.DB, o *changes.Outbox, chs ...catalog.Change) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.NoError(t, o.Append(ctx, tx, chs))
	require.NoError(t, tx.Commit(ctx))
}

func counts(t testing.TB, o *changes.Outbox) (total, backlog int64) {
	t.Helper()
	ctx := context.Background()
	total, err := o.Count(ctx)
	require.NoError(t, err)
	backlog, err = o.Backlog(ctx)
	require.NoError(t, err)
	return total, backlog
}

// Change events commit with the change they describe, or not at all.
func TestAppendIsPartOfTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, changes.Migrations())
	o := changes.NewOutbox(db.Pool)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.NoError(t, o.Append(ctx, tx, []catalog.Change{created(1, "Комната прохлады"), created(2, "Семейная медиация")}))
	var inTx int
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM changes_outbox`).Scan(&inTx))
	require.Equal(t, 2, inTx, "the transaction sees its own rows")
	total, backlog := counts(t, o)
	require.Zero(t, total, "nobody else sees them before the commit")
	require.Zero(t, backlog)
	require.NoError(t, tx.Commit(ctx))
	total, backlog = counts(t, o)
	require.EqualValues(t, 2, total)
	require.EqualValues(t, 2, backlog)

	// A rolled-back change leaves no event behind.
	tx, err = db.Pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, o.Append(ctx, tx, []catalog.Change{deleted(1, 2)}))
	require.NoError(t, tx.Rollback(ctx))
	total, backlog = counts(t, o)
	require.EqualValues(t, 2, total)
	require.EqualValues(t, 2, backlog)

	// Nothing to append is not an error and writes nothing.
	tx, err = db.Pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, o.Append(ctx, tx, nil))
	require.NoError(t, tx.Commit(ctx))
	total, _ = counts(t, o)
	require.EqualValues(t, 2, total)
}

// Append stores every field of a change, in the order given.
func TestAppendStoresChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, changes.Migrations())
	o := changes.NewOutbox(db.Pool)
	in := []catalog.Change{created(1, "Комната прохлады"), updated(1, 2, "Комната прохлады «Марьино»"), deleted(1, 3)}
	appendCommitted(t, db, o, in...)

	rows, err := db.Pool.Query(ctx, `
		SELECT seq, entity_type, entity_id, op, version, changed_fields, doc, published_at IS NULL
		FROM changes_outbox ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	var i int
	var lastSeq int64
	for rows.Next() {
		var e changes.Entry
		var unpublished bool
		require.NoError(t, rows.Scan(&e.Seq, &e.EntityType, &e.EntityID, &e.Op, &e.Version, &e.ChangedFields, &e.Doc, &unpublished))
		require.Less(t, i, len(in))
		want := in[i]
		require.Greater(t, e.Seq, lastSeq, "seq follows the order of the changes")
		lastSeq = e.Seq
		require.Equal(t, want.EntityType, e.EntityType)
		require.Equal(t, want.EntityID, e.EntityID)
		require.Equal(t, want.Op, e.Op)
		require.Equal(t, want.Version, e.Version)
		if want.ChangedFields == nil {
			require.Empty(t, e.ChangedFields)
		} else {
			require.Equal(t, want.ChangedFields, e.ChangedFields)
		}
		if want.Doc == nil {
			require.Nil(t, e.Doc, "a deleted entity has no document")
		} else {
			require.JSONEq(t, string(want.Doc), string(e.Doc))
		}
		require.True(t, unpublished)
		i++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, len(in), i)
}
