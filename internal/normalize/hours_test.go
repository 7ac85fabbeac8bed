package normalize_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
)

func TestOpeningHours(t *testing.T) {
	t.Parallel()
	type I = normalize.OpeningInterval
	const weekdays, all = "MO,TU,WE,TH,FR", "MO,TU,WE,TH,FR,SA,SU"
	for _, tc := range []struct {
		in   string
		want []I
		err  string
	}{
		{"пн-пт 9:00–18:00, сб 10:00-16:00, обед 13:00-14:00", []I{
			{weekdays, "09:00", "13:00"}, {weekdays, "14:00", "18:00"}, {"SA", "10:00", "13:00"}, {"SA", "14:00", "16:00"}}, ""},
		{"ежедневно с 8 до 20", []I{{all, "08:00", "20:00"}}, ""},
		{"круглосуточно", []I{{all, "00:00", "24:00"}}, ""},
		{"пн-пт 9:00-18:00, вых. — сб, вс", []I{{weekdays, "09:00", "18:00"}}, ""},
		{"Пн.-Чт.: 09.00-18.00; Пт.: 09.00-16.45", []I{{"MO,TU,WE,TH", "09:00", "18:00"}, {"FR", "09:00", "16:45"}}, ""},
		{"будни 8:00-20:00, выходные 10:00-18:00", []I{{weekdays, "08:00", "20:00"}, {"SA,SU", "10:00", "18:00"}}, ""},
		{"Пн−Пт 9.00—18.00, сб-вс выходной", []I{{weekdays, "09:00", "18:00"}}, ""},
		{"вт, чт 10:00–19:00", []I{{"TU,TH", "10:00", "19:00"}}, ""},
		{"пн-пт с 9 до 18, обед 13:00–13:45", []I{{weekdays, "09:00", "13:00"}, {weekdays, "13:45", "18:00"}}, ""},
		{"с пн по пт 9-18 без обеда", []I{{weekdays, "09:00", "18:00"}}, ""},
		{"ежедневно 9-21, вс 10-18", []I{{"MO,TU,WE,TH,FR,SA", "09:00", "21:00"}, {"SU", "10:00", "18:00"}}, ""},
		{"пн-пт 9:00-18:00 (перерыв 13:00-13:45), сб, вс — выходные", []I{{weekdays, "09:00", "13:00"}, {weekdays, "13:45", "18:00"}}, ""},
		{"Понедельник - пятница: 10:00 - 19:00", []I{{weekdays, "10:00", "19:00"}}, ""},
		{"без выходных 8:00-22:00", []I{{all, "08:00", "22:00"}}, ""},

		{"ежедневно с 10 до 20 в дни жары", nil, `cannot read "в"`},
		{"по предварительной записи", nil, "cannot read"},
		{"10:00-18:00", nil, "without days"},
		{"вых. — вс", nil, "no hours"},
		{"пн-пт 25:00-18:00", nil, "cannot read"},
		{"пн-пт 9-18, обед 19-20", nil, "outside the opening hours"},
		{"пн-пт 9-18, пн выходной", nil, ""},
		{"", nil, "empty"},
	} {
		got, err := normalize.OpeningHours(tc.in)
		if tc.want == nil {
			require.ErrorIs(t, err, normalize.ErrHours, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// FuzzOpeningHours: never panics; errors wrap ErrHours; every interval has days and HH:MM times.
func FuzzOpeningHours(f *testing.F) {
	for _, s := range []string{"пн-пт 9:00–18:00, сб 10:00-16:00, обед 13:00-14:00", "ежедневно с 8 до 20", "круглосуточно", "вых. — вс",
		"Пн.-Чт.: 09.00-18.00; Пт.: 09.00-16.45", "будни 8:00-20:00, выходные 10:00-18:00", "пт-пн 9-18", "9", "\xff", "без"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normalize.OpeningHours(s)
		if err != nil {
			require.True(t, errors.Is(err, normalize.ErrHours))
			return
		}
		require.NotEmpty(t, got)
		for _, iv := range got {
			require.NotEmpty(t, iv.ByDay)
			require.Regexp(t, `^([01]\d|2[0-4]):[0-5]\d$`, iv.OpensAt)
			require.Regexp(t, `^([01]\d|2[0-4]):[0-5]\d$`, iv.ClosesAt)
			require.NotEqual(t, iv.OpensAt, iv.ClosesAt)
		}
	})
}
