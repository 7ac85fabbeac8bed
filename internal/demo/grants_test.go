package demo_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"socialhub/internal/demo"
	"socialhub/internal/normalize"
)

func grantsCSV(t *testing.T, opts demo.GrantsOptions) ([]byte, [][]string, demo.GrantsManifest) {
	t.Helper()
	var buf bytes.Buffer
	man, err := demo.WriteGrantsCSVWindows1251(&buf, opts)
	require.NoError(t, err)
	text, err := charmap.Windows1251.NewDecoder().Bytes(buf.Bytes())
	require.NoError(t, err)
	r := csv.NewReader(bytes.NewReader(text))
	r.Comma = ';'
	rows, err := r.ReadAll()
	require.NoError(t, err)
	return buf.Bytes(), rows, man
}

func grantsXLSX(t *testing.T, opts demo.GrantsOptions) ([]byte, [][]string, demo.GrantsManifest) {
	t.Helper()
	var buf bytes.Buffer
	man, err := demo.WriteGrantsXLSX(&buf, opts)
	require.NoError(t, err)
	f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, []string{"Победители"}, f.GetSheetList())
	rows, err := f.GetRows("Победители", excelize.Options{RawCellValue: true})
	require.NoError(t, err)
	require.Contains(t, rows[0][0], "Перечень победителей", "a title row above the table")
	require.Empty(t, rows[1], "a blank row between the title and the header")
	return buf.Bytes(), rows[2:], man
}

func TestGrantsDeterministic(t *testing.T) {
	t.Parallel()
	a, _, am := grantsCSV(t, demo.GrantsOptions{Seed: 5})
	b, _, bm := grantsCSV(t, demo.GrantsOptions{Seed: 5})
	c, _, _ := grantsCSV(t, demo.GrantsOptions{Seed: 6})
	require.Equal(t, a, b)
	require.Equal(t, am, bm)
	require.NotEqual(t, a, c)
	x, _, xm := grantsXLSX(t, demo.GrantsOptions{Seed: 5})
	y, _, ym := grantsXLSX(t, demo.GrantsOptions{Seed: 5})
	require.Equal(t, x, y)
	require.Equal(t, xm, ym)
	z, _, _ := grantsXLSX(t, demo.GrantsOptions{})
	w, _, _ := grantsXLSX(t, demo.GrantsOptions{Seed: 1, Rows: 80, Broken: 4, Source: "demo-grants"})
	require.Equal(t, z, w, "zero options are the defaults")

	_, err := demo.WriteGrantsXLSX(&bytes.Buffer{}, demo.GrantsOptions{Rows: -1})
	require.ErrorIs(t, err, demo.ErrBadOptions)
}

func TestGrantsParseBack(t *testing.T) {
	t.Parallel()
	deps, err := demo.DepartmentOrganizations(demo.Options{})
	require.NoError(t, err)
	depByTruth := map[string]demo.DepartmentOrganization{}
	for _, d := range deps {
		depByTruth[d.TruthID] = d
	}
	for name, read := range map[string]func(*testing.T, demo.GrantsOptions) ([]byte, [][]string, demo.GrantsManifest){
		"csv": grantsCSV, "xlsx": grantsXLSX,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, rows, man := read(t, demo.GrantsOptions{})
			require.Equal(t, demo.GrantColumns, rows[0])
			rows = rows[1:]
			require.Len(t, rows, 84)
			require.Len(t, man.Valid, 80)
			require.Len(t, man.Broken, 4)
			require.Len(t, man.Rejected, 2, "the checksum rows")
			require.Len(t, man.Truth, 84)
			broken := map[string]string{}
			for _, b := range man.Broken {
				broken[b.ID] = b.Field
			}
			truth := map[string]string{}
			for _, tr := range man.Truth {
				require.Equal(t, "organization", tr.EntityType)
				require.Equal(t, demo.DefaultGrantsSource, tr.Source)
				truth[tr.ExternalID] = tr.TruthID
			}
			seen := map[string]bool{}
			variants, entities, breaks := 0, 0, 0
			for _, r := range rows {
				id := r[0]
				require.False(t, seen[id], "duplicate application number %s", id)
				seen[id] = true
				if _, ok := broken[id]; ok {
					continue
				}
				_, err := normalize.INN(r[1])
				require.NoError(t, err, id)
				_, err = normalize.OGRN(r[2])
				require.NoError(t, err, id)
				require.NotEmpty(t, strings.TrimSpace(r[3]), id)
				_, err = normalize.Amount(r[6])
				require.NoError(t, err, "%s: %q", id, r[6])
				if d, ok := depByTruth[truth[id]]; ok {
					require.Equal(t, d.INN, r[1], "a department institution keeps its INN")
					if r[3] != d.Name {
						variants++
					}
				}
				if strings.Contains(r[3], "&quot;") || strings.Contains(r[3], "&laquo;") {
					entities++
				}
				if strings.Contains(r[3]+r[5], "\n") {
					breaks++
				}
			}
			require.NotEmpty(t, man.Department)
			require.GreaterOrEqual(t, variants, 3, "department institutions are spelled other ways")
			require.Positive(t, entities, "HTML entities in names")
			require.Positive(t, breaks, "line breaks in fields")
		})
	}
}

// TestDepartmentOrganizationsMatchTheFile: the ids the truth rows use are the ones the department
// file carries, with the same names and INNs.
func TestDepartmentOrganizationsMatchTheFile(t *testing.T) {
	t.Parallel()
	b := setup(t, demo.Options{Seed: 4})
	orgs, err := demo.DepartmentOrganizations(demo.Options{Seed: 4})
	require.NoError(t, err)
	byID := map[string]demo.DepartmentOrganization{}
	for _, o := range orgs {
		byID[o.ID] = o
		require.Equal(t, demo.OrganizationTruthID(o.INN), o.TruthID)
	}
	for _, r := range b.rows {
		o, ok := byID[r["Код учреждения"]]
		require.True(t, ok, r["Код учреждения"])
		require.Equal(t, o.Name, r["Учреждение"])
		require.Equal(t, o.INN, r["ИНН"])
		require.Equal(t, o.OGRN, r["ОГРН"])
	}
	truth, err := demo.DepartmentTruth("dszn", demo.Options{Seed: 4})
	require.NoError(t, err)
	require.Len(t, truth, len(orgs))
	require.Equal(t, demo.TruthRow{EntityType: "organization", Source: "dszn", ExternalID: orgs[0].ID, TruthID: orgs[0].TruthID}, truth[0])
}
