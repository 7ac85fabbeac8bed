package normalize_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
	"socialhub/schemas"
)

func TestDistrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, district, okrug, err string }{
		{"р-н Орехово-Борисово Южное", "Орехово-Борисово Южное", "ЮАО", ""},
		{"район Марьино", "Марьино", "ЮВАО", ""},
		{"  МАРЬИНО ", "Марьино", "ЮВАО", ""},
		{"Савеловский р-н", "Савёловский", "САО", ""},
		{"р-н.Тёплый Стан", "Тёплый Стан", "ЮЗАО", ""},
		{"Орехово - Борисово  Южное", "Орехово-Борисово Южное", "ЮАО", ""},
		{"поселение Сосенское", "Сосенское", "НАО", ""},
		{"г. Троицк", "Троицк", "ТАО", ""},
		{"Юж. Тушино", "Южное Тушино", "СЗАО", ""},
		{"Марьинский район", "", "", "is not a district"},
		{"ЮАО", "", "", "is not a district"},
		{"", "", "", "empty"},
	} {
		got, err := normalize.District(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, normalize.ErrDistrict, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, normalize.Place{District: tc.district, Okrug: tc.okrug}, got, tc.in)
	}
}

// Every reference district and variant matches itself, and every okrug its short and long name.
func TestDistrictReference(t *testing.T) {
	t.Parallel()
	for _, d := range schemas.Districts() {
		for _, v := range append([]string{d.Name}, d.Variants...) {
			got, err := normalize.District(v)
			require.NoError(t, err, v)
			require.Equal(t, normalize.Place{District: d.Name, Okrug: d.Okrug}, got, v)
		}
	}
	for _, o := range schemas.Okrugs() {
		for _, v := range []string{o.Short, o.Name} {
			got, err := normalize.Okrug(v)
			require.NoError(t, err, v)
			require.Equal(t, o.Short, got)
		}
	}
}

func TestOkrug(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{"ЮАО", "ЮАО", ""},
		{"юао", "ЮАО", ""},
		{"Южный АО", "ЮАО", ""},
		{"Южный административный округ", "ЮАО", ""},
		{"Юго - Западный адм. округ", "ЮЗАО", ""},
		{"г. Зеленоград", "ЗелАО", ""},
		{"Зеленоградский АО", "ЗелАО", ""},
		{"ЗЕЛАО", "ЗелАО", ""},
		{"ТиНАО", "", "names two okrugs"},
		{"Марьино", "", "is not an okrug"},
		{"", "", "empty"},
	} {
		got, err := normalize.Okrug(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, normalize.ErrOkrug, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// FuzzDistrict: never panics, errors wrap their sentinels, and what matches matches again.
func FuzzDistrict(f *testing.F) {
	for _, s := range []string{"р-н Марьино", "Савеловский р-н", "ЮАО", "г. Зеленоград", "п.", "р-н", "\xff", " - "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := normalize.District(s); err != nil {
			require.True(t, errors.Is(err, normalize.ErrDistrict))
		} else {
			again, err := normalize.District(p.District)
			require.NoError(t, err)
			require.Equal(t, p, again)
		}
		if o, err := normalize.Okrug(s); err != nil {
			require.True(t, errors.Is(err, normalize.ErrOkrug))
		} else {
			again, err := normalize.Okrug(o)
			require.NoError(t, err)
			require.Equal(t, o, again)
		}
	})
}
