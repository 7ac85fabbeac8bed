package eligibility_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/eligibility"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db    *pgtest.DB
	store *eligibility.Store
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, eligibility.Migrations())
	return testBundle{db: db, store: eligibility.NewStore(db.Pool)}
}

// apply runs Apply in its own transaction and commits.
func (b testBundle) apply(t testing.TB, recs ...eligibility.Record) int {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	n, err := b.store.Apply(ctx, tx, recs)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return n
}

func pseudonymOf(i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(sum[:])
}

func upsert(source string, i int, pensioner bool) eligibility.Record {
	facts := fmt.Sprintf(`{"id":%q,"pensioner":%t,"address":{"address_1":"ул. Братиславская, д. %d","city":"Москва","okrug":"ЮВАО"}}`,
		pseudonymOf(i), pensioner, i)
	return eligibility.Record{Source: source, Pseudonym: pseudonymOf(i), Op: eligibility.OpUpsert, Facts: json.RawMessage(facts), SeenAt: time.Now()}
}

func del(source string, i int) eligibility.Record {
	return eligibility.Record{Source: source, Pseudonym: pseudonymOf(i), Op: eligibility.OpDelete, SeenAt: time.Now()}
}

func TestApply(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var batch []eligibility.Record
	for i := range 100 {
		batch = append(batch, upsert("residents", i, i%2 == 0))
	}
	require.Equal(t, 100, b.apply(t, batch...))
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 100, n)

	// A replay changes nothing, and does not even touch updated_at.
	before, err := b.store.Get(ctx, pseudonymOf(7))
	require.NoError(t, err)
	require.Equal(t, 0, b.apply(t, batch...))
	after, err := b.store.Get(ctx, pseudonymOf(7))
	require.NoError(t, err)
	require.Equal(t, before.UpdatedAt, after.UpdatedAt)
	require.Equal(t, "residents", after.Source)
	require.Len(t, after.ContentHash, 64)
	var facts map[string]any
	require.NoError(t, json.Unmarshal(after.Facts, &facts))
	require.Equal(t, false, facts["pensioner"])

	// One changed, one deleted, one deleted by another source (not its own): two changes.
	require.Equal(t, 2, b.apply(t, upsert("residents", 7, true), del("residents", 8), del("other-registry", 9)))
	got, err := b.store.Get(ctx, pseudonymOf(7))
	require.NoError(t, err)
	require.True(t, pensioner(t, got.Facts))
	_, err = b.store.Get(ctx, pseudonymOf(8))
	require.ErrorIs(t, err, eligibility.ErrNotFound)
	_, err = b.store.Get(ctx, pseudonymOf(9))
	require.NoError(t, err)
	n, err = b.store.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 99, n)

	// Deleting what is gone changes nothing.
	require.Equal(t, 0, b.apply(t, del("residents", 8)))
}

func TestApplyLastRecordOfABatchWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.Equal(t, 1, b.apply(t, upsert("residents", 1, false), upsert("residents", 1, true)))
	got, err := b.store.Get(ctx, pseudonymOf(1))
	require.NoError(t, err)
	require.True(t, pensioner(t, got.Facts))

	require.Equal(t, 1, b.apply(t, upsert("residents", 1, false), del("residents", 1)))
	_, err = b.store.Get(ctx, pseudonymOf(1))
	require.ErrorIs(t, err, eligibility.ErrNotFound)

	require.Equal(t, 1, b.apply(t, del("residents", 2), upsert("residents", 2, false)))
	_, err = b.store.Get(ctx, pseudonymOf(2))
	require.NoError(t, err)
}

func TestApplyRefusesInvalidRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	good := upsert("residents", 1, true)
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		rec eligibility.Record
		msg string
	}{
		"no source":       {eligibility.Record{Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert, Facts: good.Facts}, "no source"},
		"raw СНИЛС as id": {eligibility.Record{Source: "r", Pseudonym: "11223344595", Op: eligibility.OpUpsert, Facts: good.Facts}, "not a pseudonym"},
		"upper-case hex":  {eligibility.Record{Source: "r", Pseudonym: "A" + pseudonymOf(1)[1:], Op: eligibility.OpDelete}, "not a pseudonym"},
		"facts an array":  {eligibility.Record{Source: "r", Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert, Facts: json.RawMessage(`[1]`)}, "not a JSON object"},
		"facts broken":    {eligibility.Record{Source: "r", Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert, Facts: json.RawMessage(`{"a":`)}, "not a JSON object"},
		"facts trailing":  {eligibility.Record{Source: "r", Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert, Facts: json.RawMessage(`{"pensioner":true}}`)}, "not a JSON object"},
		"facts bad value": {eligibility.Record{Source: "r", Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert, Facts: json.RawMessage(`{"pensioner":tru}`)}, "not a JSON object"},
		"no facts":        {eligibility.Record{Source: "r", Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert}, "not a JSON object"},
		"unknown op":      {eligibility.Record{Source: "r", Pseudonym: pseudonymOf(1), Op: "merge", Facts: good.Facts}, "unknown op"},
	} {
		// Without rules and with them, which parse the facts on the way.
		for _, store := range []*eligibility.Store{b.store, eligibility.NewStore(b.db.Pool, eligibility.WithRules(rules))} {
			tx, err := b.db.Pool.Begin(ctx)
			require.NoError(t, err)
			_, err = store.Apply(ctx, tx, []eligibility.Record{good, tc.rec})
			require.ErrorIs(t, err, eligibility.ErrInvalidRecord, name)
			require.ErrorContains(t, err, tc.msg, name)
			require.NotContains(t, err.Error(), "11223344595", name)
			require.NoError(t, tx.Rollback(ctx))
		}
	}
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a refused batch writes nothing")
}

// pensioner reads the pensioner fact of a stored document.
func pensioner(t *testing.T, facts json.RawMessage) bool {
	t.Helper()
	var doc struct{ Pensioner bool }
	require.NoError(t, json.Unmarshal(facts, &doc))
	return doc.Pensioner
}

// The table itself refuses what is not a pseudonym, whoever writes to it.
func TestTableRefusesWhatIsNotAPseudonym(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, p := range []string{"11223344595", strings.ToUpper(pseudonymOf(1)), pseudonymOf(1)[:63] + "g", pseudonymOf(1) + "0", pseudonymOf(1)[:63]} {
		_, err := b.db.Pool.Exec(ctx, `INSERT INTO eligibility_residents (pseudonym, source, facts, content_hash, seen_at, updated_at)
			VALUES ($1, 'r', '{}', 'h', now(), now())`, p)
		require.Error(t, err, p)
	}
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO eligibility_residents (pseudonym, source, facts, content_hash, seen_at, updated_at)
		VALUES ($1, 'r', '[1]', 'h', now(), now())`, pseudonymOf(1))
	require.Error(t, err, "facts that are not an object")
}
