package pgtest

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"socialhub/internal/store"
)

func TestMain(m *testing.M) { Main(m) }

// itemsSet is shared by the tests below, so they use one template concurrently.
func itemsSet() store.MigrationSet {
	return store.MigrationSet{Name: "items", FS: fstest.MapFS{
		"001_items.up.sql":   {Data: []byte(`CREATE TABLE items (name text NOT NULL)`)},
		"001_items.down.sql": {Data: []byte(`DROP TABLE items`)},
	}}
}

func countRows(t *testing.T, db *DB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestDatabasesAreSeparate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := NewDB(t, itemsSet())
	b := NewDB(t, itemsSet())
	require.NotEqual(t, a.Name, b.Name)
	require.NotEqual(t, a.URL, b.URL)

	_, err := a.Pool.Exec(ctx, `CREATE TABLE only_in_a (id int); INSERT INTO items VALUES ('а')`)
	require.NoError(t, err)
	require.Equal(t, 0, countRows(t, b, `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`))
	require.Equal(t, 0, countRows(t, b, `SELECT count(*) FROM items`))
	require.Equal(t, 1, countRows(t, a, `SELECT count(*) FROM items`))
	require.Equal(t, a.Name, func() string {
		var name string
		require.NoError(t, a.Pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name))
		return name
	}())
}

// Two parallel tests each write their own rows and see only those.
func TestParallelDatabases(t *testing.T) {
	t.Parallel()
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			db := NewDB(t, itemsSet())
			for j := range 5 {
				_, err := db.Pool.Exec(context.Background(), `INSERT INTO items VALUES ($1)`, fmt.Sprintf("%d-%d", i, j))
				require.NoError(t, err)
			}
			require.Equal(t, 5, countRows(t, db, `SELECT count(*) FROM items WHERE name LIKE $1`, fmt.Sprintf("%d-%%", i)))
			require.Equal(t, 5, countRows(t, db, `SELECT count(*) FROM items`))
		})
	}
}

func TestCleanupDropsDatabase(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		db := NewDB(t)
		name = db.Name
		require.Equal(t, 1, countRows(t, db, `SELECT count(*) FROM pg_database WHERE datname = $1`, name))
	})
	s, err := getServer()
	require.NoError(t, err)
	var n int
	require.NoError(t, s.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n))
	require.Zero(t, n)
}

func TestTemplateBuiltOnce(t *testing.T) {
	t.Parallel()
	// Contents unique to this run, so even a shared server has no such template yet.
	set := store.MigrationSet{Name: "once", FS: fstest.MapFS{
		"001_once.up.sql": {Data: []byte(fmt.Sprintf("-- run %s\nCREATE TABLE once (id int)", randomHex(8)))},
	}}
	key, err := templateKey([]store.MigrationSet{set})
	require.NoError(t, err)

	t.Run("group", func(t *testing.T) {
		for i := range 3 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				db := NewDB(t, set)
				require.Equal(t, 1, countRows(t, db, `SELECT count(*) FROM schema_migrations WHERE set_name = 'once'`))
				require.Equal(t, 0, countRows(t, db, `SELECT count(*) FROM once`))
			})
		}
	})
	templatesMu.Lock()
	defer templatesMu.Unlock()
	require.Equal(t, 1, builds[key])
}

func TestTemplateKey(t *testing.T) {
	t.Parallel()
	a, err := templateKey([]store.MigrationSet{itemsSet()})
	require.NoError(t, err)
	again, err := templateKey([]store.MigrationSet{itemsSet()})
	require.NoError(t, err)
	require.Equal(t, a, again)

	renamed := itemsSet()
	renamed.Name = "other"
	b, err := templateKey([]store.MigrationSet{renamed})
	require.NoError(t, err)
	require.NotEqual(t, a, b)

	changed := itemsSet()
	changed.FS.(fstest.MapFS)["001_items.up.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE items (name text)`)}
	c, err := templateKey([]store.MigrationSet{changed})
	require.NoError(t, err)
	require.NotEqual(t, a, c)
}
