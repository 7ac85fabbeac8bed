package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/demo"
	"socialhub/internal/normalize"
	"socialhub/internal/pgtest"
	"socialhub/schemas"
)

func TestResidentsDeterministic(t *testing.T) {
	t.Parallel()
	a := demo.Residents(500, 7)
	require.Equal(t, a, demo.Residents(500, 7))
	require.NotEqual(t, a, demo.Residents(500, 8))
	require.Equal(t, a[:100], demo.Residents(100, 7), "a longer list starts with the shorter one")
	for _, format := range []string{demo.FormatCSV, demo.FormatJSONL} {
		var x, y bytes.Buffer
		require.NoError(t, demo.WriteResidentsSnapshot(&x, format, 300, 7))
		require.NoError(t, demo.WriteResidentsSnapshot(&y, format, 300, 7))
		require.Equal(t, x.Bytes(), y.Bytes(), format)
	}
	require.ErrorIs(t, demo.WriteResidentsSnapshot(&bytes.Buffer{}, "xml", 1, 1), demo.ErrBadOptions)
}

func TestResidentsAreRealistic(t *testing.T) {
	t.Parallel()
	const n = 5000
	rows := demo.Residents(n, 1)
	require.Len(t, rows, n)
	districts := map[string]string{}
	for _, d := range schemas.Districts() {
		districts[d.Name] = d.Okrug
	}
	okrugs := map[string]string{}
	for _, o := range schemas.Okrugs() {
		okrugs[o.Short], okrugs[o.Name] = o.Short, o.Short
	}
	snils := map[string]bool{}
	var singles, couples, families, large, disabledChild, disabledChildren, lowIncome, pensioners, variants int
	for i, r := range rows {
		require.EqualValues(t, i+1, r.ID)
		digits, err := normalize.SNILS(r.SNILS)
		require.NoError(t, err, "resident %d", r.ID)
		require.Regexp(t, `^\d{3}-\d{3}-\d{3} \d{2}$`, r.SNILS)
		require.False(t, snils[digits], "СНИЛС %s given twice", r.SNILS)
		snils[digits] = true
		require.NotEmpty(t, r.LastName)
		require.NotEmpty(t, r.FirstName)
		require.NotEmpty(t, r.Passport)

		district := strings.TrimPrefix(r.District, "р-н ")
		if district != r.District {
			variants++
		}
		okrug, ok := okrugs[r.Okrug]
		require.True(t, ok, "okrug %q is real", r.Okrug)
		require.Equal(t, districts[district], okrug, "district %q is in okrug %q", district, r.Okrug)
		require.Regexp(t, `^[^,]+, д\. \d+(, корп\. \d)?, кв\. \d+$`, r.Address)
		require.Regexp(t, `^1\d{5}$`, r.PostalCode)

		require.True(t, r.BirthDate.Before(r.RegisteredSince), "registered after birth")
		require.GreaterOrEqual(t, r.HouseholdMembers, 1)
		require.GreaterOrEqual(t, r.HouseholdMembers, r.ChildrenUnder18)
		require.LessOrEqual(t, r.ChildrenWithDisabilities, r.ChildrenUnder18)
		require.Equal(t, r.LargeFamily, r.ChildrenUnder18 >= 3, "large family means three or more children")
		require.Contains(t, []string{"", "I", "II", "III", demo.RegistryDisabilityChild}, r.DisabilityGroup)
		switch {
		case r.DisabilityGroup == demo.RegistryDisabilityChild:
			disabledChild++
		case r.HouseholdMembers == 1:
			singles++
		case r.HouseholdMembers == 2 && r.ChildrenUnder18 == 0:
			couples++
		case r.LargeFamily:
			large++
		case r.ChildrenUnder18 > 0:
			families++
		}
		if r.ChildrenWithDisabilities > 0 {
			disabledChildren++
		}
		if r.LowIncome {
			lowIncome++
		}
		if r.Pensioner {
			pensioners++
		}
	}
	for name, c := range map[string]int{
		"singles": singles, "pensioner couples": couples, "families": families, "large families": large,
		"disabled child residents": disabledChild, "households with a disabled child": disabledChildren,
		"low income": lowIncome, "pensioners": pensioners, "district variants": variants,
	} {
		require.Greater(t, c, n/200, "%s: %d of %d", name, c, n)
	}
}

func TestWriteResidentsSnapshot(t *testing.T) {
	t.Parallel()
	var c bytes.Buffer
	require.NoError(t, demo.WriteResidentsSnapshot(&c, demo.FormatCSV, 50, 3))
	r := csv.NewReader(&c)
	r.Comma = ';'
	recs, err := r.ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 51)
	require.Equal(t, "snils", recs[0][2])
	require.Regexp(t, `^\d{2}\.\d{2}\.\d{4}$`, recs[1][8], "dates as office exports write them")
	require.Contains(t, []string{"да", "нет"}, recs[1][18])

	var j bytes.Buffer
	require.NoError(t, demo.WriteResidentsSnapshot(&j, demo.FormatJSONL, 50, 3))
	sc := bufio.NewScanner(&j)
	lines := 0
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		require.Contains(t, m, "snils")
		lines++
	}
	require.Equal(t, 50, lines)
}

func TestWriteResidentsTable(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	require.NoError(t, demo.WriteResidentsTable(ctx, db.Pool, demo.DefaultResidentsTable, 1000, 5))
	var n, distinct int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT snils) FROM registry_residents`).Scan(&n, &distinct))
	require.Equal(t, 1000, n)
	require.Equal(t, 1000, distinct)
	var snils, last string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT snils, last_name FROM registry_residents WHERE id = 1`).Scan(&snils, &last))
	first := demo.Residents(1, 5)[0]
	require.Equal(t, first.SNILS, snils)
	require.Equal(t, first.LastName, last)
}
