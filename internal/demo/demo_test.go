package demo_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"

	"socialhub/internal/demo"
	"socialhub/schemas"
)

type testBundle struct {
	raw    []byte
	header []string
	rows   []map[string]string // column name → cell
	man    demo.Manifest
}

func setup(t *testing.T, opts demo.Options) testBundle {
	t.Helper()
	var buf bytes.Buffer
	man, err := demo.WriteDepartmentCSV(&buf, opts)
	require.NoError(t, err)
	r := csv.NewReader(bytes.NewReader(buf.Bytes()))
	r.Comma = ';'
	records, err := r.ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, records)
	b := testBundle{raw: buf.Bytes(), header: records[0], man: man}
	for _, rec := range records[1:] {
		row := map[string]string{}
		for i, h := range records[0] {
			row[h] = rec[i]
		}
		b.rows = append(b.rows, row)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a := setup(t, demo.Options{Seed: 7})
	b := setup(t, demo.Options{Seed: 7})
	c := setup(t, demo.Options{Seed: 8})
	require.Equal(t, a.raw, b.raw)
	require.Equal(t, a.man, b.man)
	require.NotEqual(t, a.raw, c.raw)

	// Zero options are the defaults.
	require.Equal(t, setup(t, demo.Options{}).raw, setup(t, demo.Options{Seed: 1, Rows: 240, Broken: 6}).raw)
}

func TestWindows1251(t *testing.T) {
	t.Parallel()
	utf := setup(t, demo.Options{Seed: 3})
	var buf bytes.Buffer
	man, err := demo.WriteDepartmentCSVWindows1251(&buf, demo.Options{Seed: 3})
	require.NoError(t, err)
	require.Equal(t, utf.man, man)
	require.NotEqual(t, utf.raw, buf.Bytes())
	decoded, err := charmap.Windows1251.NewDecoder().Bytes(buf.Bytes())
	require.NoError(t, err)
	require.Equal(t, utf.raw, decoded)
}

func TestCounts(t *testing.T) {
	t.Parallel()
	b := setup(t, demo.Options{})
	require.Equal(t, demo.DepartmentColumns, b.header)
	require.Len(t, b.man.Valid, 240)
	require.Len(t, b.man.Broken, 6)
	require.Len(t, b.rows, 246)

	b = setup(t, demo.Options{Seed: 2, Rows: 30, Broken: 13})
	require.Len(t, b.man.Valid, 30)
	require.Len(t, b.man.Broken, 13)
	fields := map[string]int{}
	for _, br := range b.man.Broken {
		fields[br.Field]++
		require.NotEmpty(t, br.Why)
	}
	// The six reasons are used in turn.
	require.Len(t, fields, 6)
	require.Equal(t, 3, fields["name"])
	require.Equal(t, 2, fields["url"])

	b = setup(t, demo.Options{Rows: 5, Broken: -1})
	require.Len(t, b.man.Valid, 5)
	require.Empty(t, b.man.Broken)

	_, err := demo.WriteDepartmentCSV(&bytes.Buffer{}, demo.Options{Rows: -1})
	require.ErrorIs(t, err, demo.ErrBadOptions)
}

func TestRows(t *testing.T) {
	t.Parallel()
	b := setup(t, demo.Options{})
	district := map[string]string{}
	for _, d := range schemas.Districts() {
		district[d.Name] = d.Okrug
	}
	broken := map[string]string{}
	for _, br := range b.man.Broken {
		broken[br.ID] = br.Field
	}

	idRe := regexp.MustCompile(`^DSZN-\d{6}$`)
	seen := map[string]bool{}
	var order []string
	categories := map[string]int{}
	mediation := 0
	orgRows := map[string]int{}
	orgPoints := map[string]map[string]bool{}
	phoneShapes := map[string]bool{}
	for _, r := range b.rows {
		id := r["Код"]
		require.Regexp(t, idRe, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
		order = append(order, id)
		require.True(t, validINN(r["ИНН"]), "INN %s of %s", r["ИНН"], id)
		require.True(t, validOGRN(r["ОГРН"]), "OGRN %s of %s", r["ОГРН"], id)
		require.Equal(t, district[r["Район"]], r["Округ"], "district %q of %s", r["Район"], id)
		require.Regexp(t, `^1\d{5}$`, r["Индекс"])
		require.Regexp(t, `^(\+7|8) `, r["Телефон"])
		phoneShapes[regexp.MustCompile(`\d`).ReplaceAllString(r["Телефон"], "9")] = true
		require.NotEmpty(t, r["Часы работы"])
		orgRows[r["Код учреждения"]]++
		if orgPoints[r["Код учреждения"]] == nil {
			orgPoints[r["Код учреждения"]] = map[string]bool{}
		}
		orgPoints[r["Код учреждения"]][r["Точка обслуживания"]] = true
		if _, ok := broken[id]; ok {
			continue
		}
		lat, err := strconv.ParseFloat(r["Широта"], 64)
		require.NoError(t, err)
		lon, err := strconv.ParseFloat(r["Долгота"], 64)
		require.NoError(t, err)
		require.True(t, lat >= 55.55 && lat <= 55.92 && lon >= 37.35 && lon <= 37.85, "%s: %f %f", id, lat, lon)
		require.True(t, strings.HasPrefix(r["Сайт"], "https://"))
		require.NotEmpty(t, r["Услуга"])
		cat := r["Категория"]
		_, ok := schemas.TaxonomyTermByID(cat)
		require.True(t, ok, cat)
		categories[cat]++
		if cat == "family-mediation" {
			text := strings.ToLower(r["Услуга"] + " " + r["Описание"])
			require.Contains(t, text, "медиац", id)
			mediation++
		}
	}
	// The manifest lists the rows in file order.
	var validOrder, brokenOrder []string
	for _, id := range order {
		if _, ok := broken[id]; ok {
			brokenOrder = append(brokenOrder, id)
		} else {
			validOrder = append(validOrder, id)
		}
	}
	require.Equal(t, validOrder, b.man.Valid)
	require.Equal(t, brokenOrder, brokenIDs(b.man))

	for _, term := range schemas.Taxonomy() {
		if isLeaf(term.ID) {
			require.Positive(t, categories[term.ID], "leaf %s never appears", term.ID)
		}
	}
	require.GreaterOrEqual(t, mediation, 5)

	shared, multiPoint := 0, 0
	for org, n := range orgRows {
		if n > 1 {
			shared++
		}
		if len(orgPoints[org]) > 1 {
			multiPoint++
		}
	}
	require.Greater(t, shared, 5)
	require.Greater(t, multiPoint, 3)
	require.GreaterOrEqual(t, len(phoneShapes), 3)
}

// TestValidation maps every row into the record document the way the csv connector does and
// checks valid rows pass the profile while each broken row fails on its documented field only.
func TestValidation(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	b := setup(t, demo.Options{Seed: 11, Rows: 120, Broken: 12})
	broken := map[string]string{}
	for _, br := range b.man.Broken {
		broken[br.ID] = br.Field
	}
	for _, r := range b.rows {
		doc, err := json.Marshal(document(r))
		require.NoError(t, err)
		got, err := v.Validate(schemas.EntityService, doc)
		require.NoError(t, err)
		field, isBroken := broken[r["Код"]]
		if !isBroken {
			require.Nil(t, got, "row %s: %s", r["Код"], doc)
			continue
		}
		require.Len(t, got, 1, "row %s: %+v", r["Код"], got)
		require.Equal(t, field, got[0].Field, "row %s", r["Код"])
	}
}

// document is the csv connector's mapping, written again here: the real one lives in the connector.
func document(r map[string]string) map[string]any {
	put := func(m map[string]any, key, value string) {
		if value != "" {
			m[key] = value
		}
	}
	id, orgID := r["Код"], r["Код учреждения"]
	org := map[string]any{"id": orgID}
	put(org, "name", r["Учреждение"])
	var idents []any
	if r["ИНН"] != "" {
		idents = append(idents, map[string]any{"id": orgID + "/INN", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": r["ИНН"]})
	}
	if r["ОГРН"] != "" {
		idents = append(idents, map[string]any{"id": orgID + "/OGRN", "identifier_scheme": "OGRN", "identifier_type": "ОГРН", "identifier": r["ОГРН"]})
	}
	if idents != nil {
		org["organization_identifiers"] = idents
	}
	addr := map[string]any{
		"id": orgID + "/addr", "address_1": r["Адрес"], "city": "Москва", "state_province": "Москва",
		"country": "RU", "address_type": "physical",
	}
	put(addr, "postal_code", r["Индекс"])
	put(addr, "district", r["Район"])
	put(addr, "okrug", r["Округ"])
	loc := map[string]any{"id": orgID + "/loc/" + r["Адрес"], "location_type": "physical", "addresses": []any{addr}}
	put(loc, "name", r["Точка обслуживания"])
	for key, col := range map[string]string{"latitude": "Широта", "longitude": "Долгота"} {
		if f, err := strconv.ParseFloat(r[col], 64); err == nil {
			loc[key] = f
		} else {
			put(loc, key, r[col])
		}
	}
	s := map[string]any{
		"id": id, "status": "active", "organization": org,
		"service_at_locations": []any{map[string]any{"id": id + "/sal/0", "location": loc}},
	}
	put(s, "name", r["Услуга"])
	put(s, "description", r["Описание"])
	put(s, "email", r["Email"])
	put(s, "url", r["Сайт"])
	if r["Категория"] != "" {
		s["attributes"] = []any{map[string]any{"id": id + "/attr/0", "taxonomy_term_id": r["Категория"]}}
	}
	if r["Телефон"] != "" {
		s["phones"] = []any{map[string]any{"id": id + "/phone/0", "number": r["Телефон"]}}
	}
	if r["Часы работы"] != "" {
		s["schedules"] = []any{map[string]any{"id": id + "/schedule/0", "description": r["Часы работы"]}}
	}
	return s
}

func brokenIDs(m demo.Manifest) []string {
	var ids []string
	for _, b := range m.Broken {
		ids = append(ids, b.ID)
	}
	return ids
}

func isLeaf(id string) bool {
	for _, t := range schemas.Taxonomy() {
		if t.ParentID == id {
			return false
		}
	}
	return true
}

func digits(s string) []int {
	d := make([]int, len(s))
	for i, c := range s {
		if c < '0' || c > '9' {
			return nil
		}
		d[i] = int(c - '0')
	}
	return d
}

// validINN checks a legal entity's 10-digit INN (ФНС weights 2 4 10 3 5 9 4 6 8).
func validINN(s string) bool {
	d := digits(s)
	if len(d) != 10 {
		return false
	}
	sum := 0
	for i, w := range []int{2, 4, 10, 3, 5, 9, 4, 6, 8} {
		sum += w * d[i]
	}
	return sum%11%10 == d[9]
}

// validOGRN checks a 13-digit OGRN: the first twelve digits mod 11, mod 10, is the last.
func validOGRN(s string) bool {
	d := digits(s)
	if len(d) != 13 {
		return false
	}
	n, err := strconv.ParseInt(s[:12], 10, 64)
	return err == nil && int(n%11%10) == d[12]
}

// A large list with generated institutions looks like a city's: most rows are services of their
// own at points of their own, every row still validates, and the default list is untouched.
func TestInstitutions(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	const rows = 3000
	b := setup(t, demo.Options{Seed: 5, Rows: rows, Broken: -1, Institutions: demo.InstitutionsFor(rows)})
	orgs, points, offers := map[string]bool{}, map[string]string{}, map[string]bool{}
	for _, r := range b.rows {
		orgs[r["ИНН"]] = true
		if org, ok := points[r["Адрес"]]; ok {
			require.Equal(t, org, r["Код учреждения"], "two institutions share the address %s", r["Адрес"])
		}
		points[r["Адрес"]] = r["Код учреждения"]
		offers[r["Код учреждения"]+"|"+r["Адрес"]+"|"+r["Категория"]] = true
		doc, err := json.Marshal(document(r))
		require.NoError(t, err)
		got, err := v.Validate(schemas.EntityService, doc)
		require.NoError(t, err)
		require.Nil(t, got, "row %s: %s", r["Код"], doc)
	}
	require.Greater(t, len(orgs), demo.InstitutionsFor(rows)/2)
	require.Greater(t, len(points), rows/8)
	require.Greater(t, len(offers), rows/2, "most rows are an offer of their own")

	plain := setup(t, demo.Options{Seed: 5, Rows: 200, Broken: -1})
	again := setup(t, demo.Options{Seed: 5, Rows: 200, Broken: -1, Institutions: 0})
	require.Equal(t, plain.raw, again.raw)
}
