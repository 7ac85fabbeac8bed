package store_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"socialhub/internal/pgtest"
	"socialhub/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	ctx  context.Context
	db   *pgtest.DB
	pool *pgxpool.Pool
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	db := pgtest.NewDB(t)
	return &testBundle{ctx: ctx, db: db, pool: db.Pool}
}

func (b *testBundle) tableExists(t *testing.T, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok))
	return ok
}

func catalogSet() store.MigrationSet {
	return store.MigrationSet{Name: "catalog", FS: fstest.MapFS{
		"001_services.up.sql":   {Data: []byte(`CREATE TABLE services (id text PRIMARY KEY); CREATE INDEX services_idx ON services (id);`)},
		"001_services.down.sql": {Data: []byte(`DROP TABLE services`)},
		"002_phones.up.sql":     {Data: []byte(`CREATE TABLE phones (number text NOT NULL)`)},
		"002_phones.down.sql":   {Data: []byte(`DROP TABLE phones`)},
		"README.md":             {Data: []byte("ignored")},
	}}
}

func TestMigrateAppliesOnceAndDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	outbox := store.MigrationSet{Name: "changes", FS: fstest.MapFS{
		"001_outbox.up.sql":   {Data: []byte(`CREATE TABLE outbox (seq bigserial PRIMARY KEY)`)},
		"001_outbox.down.sql": {Data: []byte(`DROP TABLE outbox`)},
	}}

	require.NoError(t, store.Migrate(b.ctx, b.pool, catalogSet(), outbox))
	for _, table := range []string{"services", "phones", "outbox"} {
		require.True(t, b.tableExists(t, table), table)
	}
	applied, err := store.Applied(b.ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, applied, 3)
	require.Equal(t, store.AppliedMigration{Set: "catalog", Version: 2, Slug: "phones", AppliedAt: applied[1].AppliedAt}, applied[1])
	require.Equal(t, "changes", applied[2].Set)

	// A second run changes nothing.
	require.NoError(t, store.Migrate(b.ctx, b.pool, catalogSet(), outbox))
	again, err := store.Applied(b.ctx, b.pool)
	require.NoError(t, err)
	require.Equal(t, applied, again)

	// A new version is applied alone.
	grown := catalogSet()
	grown.FS.(fstest.MapFS)["003_emails.up.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE emails (address text)`)}
	require.NoError(t, store.Migrate(b.ctx, b.pool, grown))
	require.True(t, b.tableExists(t, "emails"))

	// Down to 1 needs a down file for 3.
	err = store.MigrateDown(b.ctx, b.pool, grown, 1)
	require.ErrorIs(t, err, store.ErrNoDownMigration)
	require.True(t, b.tableExists(t, "emails"), "nothing reverted when a down file is missing")

	grown.FS.(fstest.MapFS)["003_emails.down.sql"] = &fstest.MapFile{Data: []byte(`DROP TABLE emails`)}
	require.NoError(t, store.MigrateDown(b.ctx, b.pool, grown, 1))
	require.False(t, b.tableExists(t, "emails"))
	require.False(t, b.tableExists(t, "phones"))
	require.True(t, b.tableExists(t, "services"))

	require.NoError(t, store.MigrateDown(b.ctx, b.pool, grown, 0))
	require.False(t, b.tableExists(t, "services"))
	applied, err = store.Applied(b.ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, applied, 1, "only the other set is left")
	require.Equal(t, "changes", applied[0].Set)

	// And up again.
	require.NoError(t, store.Migrate(b.ctx, b.pool, grown))
	require.True(t, b.tableExists(t, "emails"))
}

func TestMigrateFailureRollsBackThatVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	set := store.MigrationSet{Name: "broken", FS: fstest.MapFS{
		"001_ok.up.sql":     {Data: []byte(`CREATE TABLE ok (id int)`)},
		"002_broken.up.sql": {Data: []byte(`CREATE TABLE half (id int); SELECT no_such_column FROM ok;`)},
	}}
	err := store.Migrate(b.ctx, b.pool, set)
	require.ErrorContains(t, err, "broken/002_broken")
	require.True(t, b.tableExists(t, "ok"))
	require.False(t, b.tableExists(t, "half"))
	applied, err := store.Applied(b.ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, applied, 1)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Separate pools, as two hub processes would have. CREATE TABLE without IF NOT EXISTS fails if
	// a version ran twice.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		pool, err := store.Open(b.ctx, b.db.URL)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		wg.Go(func() { errs[i] = store.Migrate(b.ctx, pool, catalogSet()) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	applied, err := store.Applied(b.ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, applied, 2)
}

func TestMigrateRejectsBadSets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, files := range map[string]fstest.MapFS{
		"no version digits":  {"1_x.sql": {}},
		"short version":      {"1_x.up.sql": {}},
		"no direction":       {"001_x.sql": {}},
		"upper-case slug":    {"001_X.up.sql": {}},
		"version zero":       {"000_x.up.sql": {}},
		"duplicate version":  {"001_a.up.sql": {}, "001_b.up.sql": {}},
		"up and down differ": {"001_a.up.sql": {}, "001_b.down.sql": {}},
		"down without up":    {"001_a.up.sql": {}, "002_b.down.sql": {}},
	} {
		err := store.Migrate(b.ctx, b.pool, store.MigrationSet{Name: "bad", FS: files})
		require.ErrorIs(t, err, store.ErrBadMigrations, name)
	}
	err := store.Migrate(b.ctx, b.pool, catalogSet(), catalogSet())
	require.ErrorIs(t, err, store.ErrBadMigrations, "set given twice")
	err = store.Migrate(b.ctx, b.pool, store.MigrationSet{FS: fstest.MapFS{}})
	require.ErrorIs(t, err, store.ErrBadMigrations, "set without a name")

	err = store.Migrate(b.ctx, b.pool, store.MigrationSet{Name: "bad", FS: fstest.MapFS{"1_x.sql": {}}})
	require.ErrorContains(t, err, `"1_x.sql"`)

	// Validation happens before anything runs.
	applied, err := store.Applied(b.ctx, b.pool)
	require.NoError(t, err)
	require.Empty(t, applied)
	require.False(t, b.tableExists(t, "services"))
}

func TestOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pool, err := store.Open(b.ctx, b.db.URL)
	require.NoError(t, err)
	pool.Close()

	_, err = store.Open(b.ctx, "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2")
	require.ErrorContains(t, err, `error connecting to database "nowhere" on 127.0.0.1:1`)

	_, err = store.Open(b.ctx, "postgres://%zz")
	require.ErrorContains(t, err, "error parsing database URL")
}
