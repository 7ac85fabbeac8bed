package residents

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/pseudonym"
)

// The builder writes the document in canonical form and hashes its bytes: the bytes must be what
// event.Canonical makes of the document json.Marshal writes (what the connector sent before), and
// the hash event.ContentHash's, or every replay after an upgrade would rewrite the stores.
func TestDocumentIsCanonicalAndHashedAsBefore(t *testing.T) {
	t.Parallel()
	p, err := pseudonym.New(bytes.Repeat([]byte{0x5a}, 32))
	require.NoError(t, err)
	b := &builder{cols: DefaultColumns, city: "Москва", pseudo: p}
	var rows []map[string]any
	for _, r := range demo.Residents(2000, 7) {
		rows = append(rows, map[string]any{
			"snils": r.SNILS, "address": r.Address, "district": r.District, "okrug": r.Okrug, "postal_code": r.PostalCode,
			"registered_since": r.RegisteredSince, "birth_date": r.BirthDate, "household_members": int32(r.HouseholdMembers),
			"children_under_18": int64(r.ChildrenUnder18), "children_with_disabilities": r.ChildrenWithDisabilities,
			"disability_group": r.DisabilityGroup, "pensioner": r.Pensioner, "low_income": r.LowIncome, "large_family": r.LargeFamily,
		})
	}
	snils := demo.Residents(1, 7)[0].SNILS
	odd := []string{`<b>&amp;</b>`, `«кавычки» "и" \ слэш`, "tab\there", "ctrl\x01\x1f", "bad \xff utf-8", "line\u2028sep\u2029",
		"Ёлки-палки", "", "   ", "\u007f", "emoji 😀", `\u0041`, "a\nb"}
	for _, s := range odd {
		rows = append(rows, map[string]any{"snils": snils, "address": s, "district": s, "okrug": s, "postal_code": s,
			"registered_since": s, "birth_date": s, "household_members": s, "disability_group": s, "pensioner": s})
	}
	rows = append(rows,
		map[string]any{"snils": snils, "household_members": 2.5, "children_under_18": 1e21, "children_with_disabilities": float64(3)},
		map[string]any{"snils": snils, "pensioner": "да", "low_income": "нет", "large_family": "может быть", "disability_group": "2 группа"},
		map[string]any{"snils": snils, "birth_date": "01.02.1960", "registered_since": "2001-01-01T10:00:00+03:00"},
		map[string]any{"snils": snils},
	)
	for i, row := range rows {
		get := func(col string) any { return row[col] }
		rec, err := b.build(get, rowRef{"row", i}, false)
		require.NoError(t, err, i)
		require.Empty(t, rec.Reasons, i)
		// What the connector wrote before: the struct through json.Marshal.
		before := oldDocument(t, b, get)
		canon, err := event.Canonical(before)
		require.NoError(t, err)
		require.Equal(t, string(canon), string(rec.Data), "row %d", i)
		hash, err := event.ContentHash(rec.Data)
		require.NoError(t, err)
		require.Equal(t, hash, rec.ContentHash, "row %d", i)
	}
}

// oldDocument is the document as build wrote it before it wrote canonical form itself.
func oldDocument(t *testing.T, b *builder, get getter) []byte {
	c := b.cols
	pseudo, err := b.pseudo.Pseudonym(text(get(c.NationalID)))
	require.NoError(t, err)
	r := resident{
		ID: pseudo,
		Address: address{Address1: text(get(c.Address)), City: b.city, PostalCode: text(get(c.PostalCode)),
			District: district(text(get(c.District))), Okrug: okrug(text(get(c.Okrug)))},
		RegisteredSince: date(get(c.RegisteredSince)), BirthDate: date(get(c.BirthDate)),
		DisabilityGroup: disabilityGroup(get(c.DisabilityGroup), c.DisabilityGroup != ""),
		Pensioner:       boolean(get(c.Pensioner)), LowIncome: boolean(get(c.LowIncome)), LargeFamily: boolean(get(c.LargeFamily)),
	}
	h := household{Members: integer(get(c.HouseholdMembers)), ChildrenUnder18: integer(get(c.ChildrenUnder18)),
		ChildrenWithDisabilities: integer(get(c.ChildrenWithDisabilities))}
	if h != (household{}) {
		r.Household = &h
	}
	data, err := json.Marshal(r)
	require.NoError(t, err)
	return data
}

func TestPositionIsWhatJSONWrites(t *testing.T) {
	t.Parallel()
	for _, id := range []json.RawMessage{json.RawMessage(`17`), json.RawMessage(`"a-b"`)} {
		at := time.Date(2025, 6, 1, 10, 0, 0, 123456000, time.FixedZone("MSK", 3*3600))
		want, err := json.Marshal(tablePosition{UpdatedAt: at.UTC(), ID: id})
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendPosition(nil, at, id)))
	}
}
