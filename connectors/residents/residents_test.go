package residents_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/connectortest"
	"socialhub/connectors/residents"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/normalize"
	"socialhub/internal/pgtest"
	"socialhub/internal/pseudonym"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testKey is the pseudonym key of every test.
var testKey = bytes.Repeat([]byte{0x5a}, 32)

const dsnEnv = "REGISTRY_DSN"

func env(dsn string) func(string) string {
	return func(name string) string {
		switch name {
		case pseudonym.EnvKey:
			return hex.EncodeToString(testKey)
		case dsnEnv:
			return dsn
		}
		return ""
	}
}

func build(t testing.TB, opts map[string]any, getenv func(string) string) (connectors.Source, error) {
	t.Helper()
	cfg, err := config.NewSource("residents", residents.KindName, "", opts)
	require.NoError(t, err)
	return residents.New(cfg, connectors.Deps{Getenv: getenv})
}

func source(t testing.TB, opts map[string]any, getenv func(string) string) connectors.Source {
	t.Helper()
	src, err := build(t, opts, getenv)
	require.NoError(t, err)
	return src
}

func pseudonymOf(t testing.TB, snils string) string {
	t.Helper()
	p, err := pseudonym.New(testKey)
	require.NoError(t, err)
	s, err := p.Pseudonym(snils)
	require.NoError(t, err)
	return s
}

// breakSNILS changes a resident's control number so that it no longer holds.
func breakSNILS(s string) string {
	last := s[len(s)-1]
	return s[:len(s)-1] + string('0'+(last-'0'+1)%10)
}

// registry is a PostgreSQL database acting as the residents' registry.
type registry struct {
	db   *pgtest.DB
	rows []demo.Resident
}

// newRegistry loads n demo residents, the ones at the given indexes with a broken СНИЛС.
func newRegistry(t testing.TB, n int, broken ...int) registry {
	t.Helper()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	rows := demo.Residents(n, 11)
	for _, i := range broken {
		rows[i].SNILS = breakSNILS(rows[i].SNILS)
	}
	require.NoError(t, demo.CreateResidentsTable(ctx, db.Pool, demo.DefaultResidentsTable))
	require.NoError(t, demo.CopyResidents(ctx, db.Pool, demo.DefaultResidentsTable, rows))
	return registry{db: db, rows: rows}
}

func tableOptions(extra map[string]any) map[string]any {
	opts := map[string]any{"mode": "table", "dsn_env": dsnEnv, "table": demo.DefaultResidentsTable, "page_size": 7}
	for k, v := range extra {
		opts[k] = v
	}
	return opts
}

func TestTableAcceptance(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 40, 4, 17)
	connectortest.Run(t, connectortest.Fixture{
		New:      func(t *testing.T) connectors.Source { return source(t, tableOptions(nil), env(reg.db.URL)) },
		Want:     40,
		Rejected: 2,
		Break: func(t *testing.T) {
			_, err := reg.db.Pool.Exec(context.Background(), `ALTER TABLE registry_residents RENAME TO registry_residents_gone`)
			require.NoError(t, err)
		},
	})
}

// snapshotFile writes rows as a snapshot file and returns its path.
func snapshotFile(t testing.TB, format string, rows []demo.Resident) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, demo.EncodeResidents(&buf, format, rows))
	path := filepath.Join(t.TempDir(), "residents."+format)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path
}

func TestSnapshotFileAcceptance(t *testing.T) {
	t.Parallel()
	rows := demo.Residents(30, 12)
	rows[2].SNILS = breakSNILS(rows[2].SNILS)
	path := snapshotFile(t, demo.FormatCSV, rows)
	connectortest.Run(t, connectortest.Fixture{
		New: func(t *testing.T) connectors.Source {
			return source(t, map[string]any{"mode": "snapshot", "path": path, "format": "csv"}, env(""))
		},
		Want:     30,
		Rejected: 1,
		Shrink: func(t *testing.T) []string {
			gone := []string{pseudonymOf(t, rows[5].SNILS), pseudonymOf(t, rows[20].SNILS)}
			kept := append(append(append([]demo.Resident(nil), rows[:5]...), rows[6:20]...), rows[21:]...)
			var buf bytes.Buffer
			require.NoError(t, demo.EncodeResidents(&buf, demo.FormatCSV, kept))
			require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
			return gone
		},
		Break: func(t *testing.T) { require.NoError(t, os.Remove(path)) },
	})
}

// server serves a snapshot over HTTP; Break makes it answer 503.
type server struct {
	mu     sync.Mutex
	body   []byte
	broken bool
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		http.Error(w, "registry export is being rebuilt", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write(s.body)
}

func TestSnapshotHTTPAcceptance(t *testing.T) {
	t.Parallel()
	rows := demo.Residents(25, 13)
	rows[0].SNILS = breakSNILS(rows[0].SNILS)
	rows[24].SNILS = breakSNILS(rows[24].SNILS)
	var buf bytes.Buffer
	require.NoError(t, demo.EncodeResidents(&buf, demo.FormatJSONL, rows))
	srv := &server{body: append(buf.Bytes(), "\n{not json\n"...)}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	connectortest.Run(t, connectortest.Fixture{
		New: func(t *testing.T) connectors.Source {
			return source(t, map[string]any{"mode": "snapshot", "url": hs.URL, "format": "jsonl", "rate_limit": -1}, env(""))
		},
		Want:     26,
		Rejected: 3, // two bad checksums and the line that is not JSON
		Shrink: func(t *testing.T) []string {
			var b bytes.Buffer
			require.NoError(t, demo.EncodeResidents(&b, demo.FormatJSONL, rows[:20]))
			srv.mu.Lock()
			srv.body = b.Bytes()
			srv.mu.Unlock()
			var gone []string
			for _, r := range rows[20:24] {
				gone = append(gone, pseudonymOf(t, r.SNILS))
			}
			return gone
		},
		Break: func(t *testing.T) {
			srv.mu.Lock()
			srv.broken = true
			srv.mu.Unlock()
		},
	})
}

// TestNoDirectIdentifiers proves that no raw СНИЛС (in any spelling), name, passport or phone
// reaches a record, in either mode, rejected records included.
func TestNoDirectIdentifiers(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 300, 3, 50, 299)
	var csvBuf, jsonlBuf bytes.Buffer
	require.NoError(t, demo.EncodeResidents(&csvBuf, demo.FormatCSV, reg.rows))
	require.NoError(t, demo.EncodeResidents(&jsonlBuf, demo.FormatJSONL, reg.rows))
	dir := t.TempDir()
	csvPath, jsonlPath := filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.jsonl")
	require.NoError(t, os.WriteFile(csvPath, csvBuf.Bytes(), 0o600))
	require.NoError(t, os.WriteFile(jsonlPath, jsonlBuf.Bytes(), 0o600))
	for name, src := range map[string]connectors.Source{
		"table": source(t, tableOptions(nil), env(reg.db.URL)),
		"csv":   source(t, map[string]any{"mode": "snapshot", "path": csvPath, "format": "csv"}, env("")),
		"jsonl": source(t, map[string]any{"mode": "snapshot", "path": jsonlPath, "format": "jsonl"}, env("")),
	} {
		recs := connectortest.ReadAll(t, src, nil)
		require.Len(t, recs, 300, name)
		rejected := 0
		for i, rec := range recs {
			r := reg.rows[i]
			digits := strings.NewReplacer("-", "", " ", "").Replace(r.SNILS)
			for _, s := range []string{
				// Names as whole values: «Алексеев» is also the start of the district «Алексеевский».
				r.SNILS, digits, digits[:9], normalize.FormatSNILS(digits), `"` + r.LastName + `"`, `"` + r.FirstName + `"`,
				r.LastName + " " + r.FirstName, r.FirstName + " " + r.MiddleName, r.MiddleName, r.Passport,
				strings.ReplaceAll(r.Passport, " ", ""), r.Phone,
			} {
				for _, where := range []string{string(rec.Data), rec.ExternalID, string(rec.Position), fmt.Sprint(rec.Reasons)} {
					require.NotContains(t, where, s, "%s: resident %d", name, r.ID)
				}
			}
			if rec.Reasons != nil {
				rejected++
				require.Contains(t, string(rec.Data), `"reason":"invalid СНИЛС: control number`, name)
				continue
			}
			require.Equal(t, pseudonymOf(t, r.SNILS), rec.ExternalID, name)
		}
		require.Equal(t, 3, rejected, name)
	}
}

// TestDocumentsValidate checks every record of both modes against schemas/resident.json, and that
// both modes give the same document for the same resident.
func TestDocumentsValidate(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 500)
	path := snapshotFile(t, demo.FormatCSV, reg.rows)
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	table := connectortest.ReadAll(t, source(t, tableOptions(nil), env(reg.db.URL)), nil)
	snap := connectortest.ReadAll(t, source(t, map[string]any{"mode": "snapshot", "path": path, "format": "csv"}, env("")), nil)
	require.Len(t, table, 500)
	require.Len(t, snap, 500)
	normalized := 0
	for i := range table {
		require.Equal(t, schemas.EntityResident, table[i].EntityType)
		require.Equal(t, event.OpUpsert, table[i].Op)
		got, err := v.Validate(schemas.EntityResident, table[i].Data)
		require.NoError(t, err)
		require.Empty(t, got, "%s", table[i].Data)
		require.Equal(t, table[i].ExternalID, snap[i].ExternalID)
		require.JSONEq(t, string(table[i].Data), string(snap[i].Data))
		if reg.rows[i].District != "" && strings.HasPrefix(reg.rows[i].District, "р-н ") {
			normalized++
			require.Contains(t, string(table[i].Data), `"district":"`+strings.TrimPrefix(reg.rows[i].District, "р-н ")+`"`)
		}
	}
	require.Positive(t, normalized)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(table[0].Data, &doc))
	r := reg.rows[0]
	require.Equal(t, r.BirthDate.Format("2006-01-02"), doc["birth_date"])
	require.Equal(t, r.Pensioner, doc["pensioner"])
	require.Equal(t, "Москва", doc["address"].(map[string]any)["city"])
	require.EqualValues(t, r.HouseholdMembers, doc["household"].(map[string]any)["members"])
}

func TestTableResumesAcrossPagesAfterRestart(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 50)
	opts := tableOptions(map[string]any{"page_size": 4})
	all := connectortest.ReadAll(t, source(t, opts, env(reg.db.URL)), nil)
	require.Len(t, all, 50)

	// A run stopped after 10 records (mid-page: pages hold 4), then a new process resumes.
	ctx := context.Background()
	first := source(t, opts, env(reg.db.URL))
	require.NoError(t, first.Open(ctx, nil))
	var got []connectors.Record
	for range 10 {
		r, err := first.Read(ctx)
		require.NoError(t, err)
		got = append(got, r)
	}
	require.NoError(t, first.Close(ctx))
	got = append(got, connectortest.ReadAll(t, source(t, opts, env(reg.db.URL)), got[9].Position)...)
	require.Len(t, got, 50)
	for i := range all {
		require.Equal(t, all[i].ExternalID, got[i].ExternalID)
		require.Equal(t, string(all[i].Data), string(got[i].Data))
	}
}

func TestTableReadsRowsUpdatedAfterARun(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 20)
	ctx := context.Background()
	opts := tableOptions(map[string]any{"deleted_column": "deleted"})
	all := connectortest.ReadAll(t, source(t, opts, env(reg.db.URL)), nil)
	require.Len(t, all, 20)
	last := all[len(all)-1].Position
	require.Empty(t, connectortest.ReadAll(t, source(t, opts, env(reg.db.URL)), last), "nothing changed")

	// The registry changes two residents: one moves to Марьино, one is removed.
	_, err := reg.db.Pool.Exec(ctx, `
		UPDATE registry_residents SET district = 'район Марьино', okrug = 'ЮВАО', updated_at = updated_at + interval '1 day' WHERE id = 3;
		UPDATE registry_residents SET deleted = true, updated_at = updated_at + interval '2 days' WHERE id = 8`)
	require.NoError(t, err)
	next := connectortest.ReadAll(t, source(t, opts, env(reg.db.URL)), last)
	require.Len(t, next, 2)
	require.Equal(t, all[2].ExternalID, next[0].ExternalID)
	require.Equal(t, event.OpUpsert, next[0].Op)
	require.Contains(t, string(next[0].Data), `"district":"Марьино","okrug":"ЮВАО"`)
	require.Equal(t, all[7].ExternalID, next[1].ExternalID, "the delete carries the same pseudonym as the upserts")
	require.Equal(t, event.OpDelete, next[1].Op)
	require.Nil(t, next[1].Data)
	require.Empty(t, connectortest.ReadAll(t, source(t, opts, env(reg.db.URL)), next[1].Position))
}

func TestSnapshotIDAndResume(t *testing.T) {
	t.Parallel()
	rows := demo.Residents(10, 14)
	path := snapshotFile(t, demo.FormatJSONL, rows)
	opts := map[string]any{"mode": "snapshot", "path": path, "format": "jsonl"}
	src := source(t, opts, env(""))
	all := connectortest.ReadAll(t, src, nil)
	id := src.(connectors.Snapshotter).SnapshotID()
	require.Len(t, id, 64)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, id, fmt.Sprintf("%x", sha256Sum(raw)))

	again := source(t, opts, env(""))
	rest := connectortest.ReadAll(t, again, all[4].Position)
	require.Len(t, rest, 5)
	require.Equal(t, id, again.(connectors.Snapshotter).SnapshotID(), "a resumed snapshot keeps its id")
}

func TestMissingKeyRefusesToBuild(t *testing.T) {
	t.Parallel()
	for name, getenv := range map[string]func(string) string{
		"missing": func(string) string { return "" },
		"short":   func(n string) string { return map[string]string{pseudonym.EnvKey: "abcd"}[n] },
	} {
		_, err := build(t, map[string]any{"mode": "snapshot", "path": "x.csv", "format": "csv"}, getenv)
		require.ErrorIs(t, err, pseudonym.ErrKey, name)
		require.ErrorContains(t, err, "SOCIALHUB_PSEUDONYM_KEY", name)
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]map[string]any{
		"no mode":              {"path": "x.csv", "format": "csv"},
		"unknown mode":         {"mode": "api"},
		"table without dsn":    {"mode": "table", "table": "t"},
		"dsn env unset":        {"mode": "table", "dsn_env": "NOT_SET", "table": "t"},
		"table without table":  {"mode": "table", "dsn": "postgres://x"},
		"three-part table":     {"mode": "table", "dsn": "postgres://x", "table": "a.b.c"},
		"no cursor column":     {"mode": "table", "dsn": "postgres://x", "table": "t", "columns": map[string]any{"id": "-"}},
		"snapshot without fmt": {"mode": "snapshot", "path": "x"},
		"snapshot both":        {"mode": "snapshot", "path": "x", "url": "http://x", "format": "csv"},
		"snapshot with table":  {"mode": "snapshot", "path": "x", "format": "csv", "table": "t"},
		"bad encoding":         {"mode": "snapshot", "path": "x", "format": "csv", "encoding": "koi8-r"},
		"unknown option":       {"mode": "snapshot", "path": "x", "format": "csv", "colums": map[string]any{}},
		"no national id":       {"mode": "snapshot", "path": "x", "format": "csv", "columns": map[string]any{"national_id": "-"}},
	} {
		_, err := build(t, opts, env(""))
		require.ErrorIs(t, err, connectors.ErrBadOptions, name)
	}
}

func TestCSVMissingColumnNamesTheMapping(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "r.csv")
	require.NoError(t, os.WriteFile(path, []byte("СНИЛС;Адрес\n112-233-445 95;ул. Тверская, д. 1\n"), 0o600))
	src := source(t, map[string]any{"mode": "snapshot", "path": path, "format": "csv", "columns": map[string]any{
		"national_id": "СНИЛС", "address": "Адрес", "birth_date": "Дата рождения",
	}}, env(""))
	err := src.Open(context.Background(), nil)
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.ErrorContains(t, err, `columns.birth_date = "Дата рождения"`)
}

func TestTableMissingTableIsAnOptionsError(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 2)
	src := source(t, tableOptions(map[string]any{"table": "public.no_such_table"}), env(reg.db.URL))
	ctx := context.Background()
	require.NoError(t, src.Open(ctx, nil))
	defer src.Close(ctx)
	_, err := src.Read(ctx)
	require.ErrorIs(t, err, connectors.ErrBadOptions)
	require.NotErrorIs(t, err, connectors.ErrBackoffRetry)
}
