package normalize_test

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
)

func TestName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`ГБУ ТЦСО "Марьино"`:                 "ГБУ ТЦСО «Марьино»",
		"ГБУ  ТЦСО\n„Марьино“":               "ГБУ ТЦСО «Марьино»",
		`АНО "Центр "Вместе""`:               "АНО «Центр «Вместе»»",
		"ТЦСО “Марьино”, филиал \"Люблино\"": "ТЦСО «Марьино», филиал «Люблино»",
		"Центр\u00a0«Моя работа» ":           "Центр «Моя работа»",
		"Пансионат для ветеранов труда № 1":  "Пансионат для ветеранов труда № 1",
		"Сбер": "Сбер",
	} {
		require.Equal(t, want, normalize.Name(in), in)
	}
	// NFC: и + combining breve is й.
	require.Equal(t, "Бийск", normalize.Name("Бии\u0306ск"))
}

func TestMatchKey(t *testing.T) {
	t.Parallel()
	same := []string{
		`ГБУ ТЦСО "Марьино"`,
		"Государственное бюджетное учреждение Территориальный центр социального обслуживания «Марьино»",
		"гбу  территориальный центр социального обслуживания МАРЬИНО",
	}
	for _, n := range same {
		require.Equal(t, "гбу тцсо марьино", normalize.MatchKey(n), n)
	}
	require.Equal(t, "бф старость в радость", normalize.MatchKey("Благотворительный фонд «Старость в радость»"))
	require.Equal(t, "ано центр вместе", normalize.MatchKey(`Автономная некоммерческая организация "Центр "Вместе""`))
	require.Equal(t, "роо семья", normalize.MatchKey("Региональная общественная организация «Семья»"))
	require.Equal(t, "гку г москвы", normalize.MatchKey("Государственное казённое учреждение города Москвы"))
	require.Equal(t, "гбуз больница № 1", normalize.MatchKey("Государственное бюджетное учреждение здравоохранения «Больница № 1»"))
	require.NotEqual(t, normalize.MatchKey("ГБУ ТЦСО «Марьино»"), normalize.MatchKey("ГАУ ТЦСО «Марьино»"))
	// The display name keeps the legal form.
	require.Equal(t, "Благотворительный фонд «Старость в радость»", normalize.Name(`Благотворительный фонд "Старость в радость"`))
}

// FuzzName: never panics; Name and MatchKey are idempotent and keep valid UTF-8 valid.
func FuzzName(f *testing.F) {
	for _, s := range []string{`ГБУ ТЦСО "Марьино"`, "„a“ \"b\"", "\"\"\"", "  \n ", "\xff", "Бии\u0306ск"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := normalize.Name(s)
		require.Equal(t, n, normalize.Name(n))
		k := normalize.MatchKey(s)
		require.Equal(t, k, normalize.MatchKey(k))
		if utf8.ValidString(s) {
			require.True(t, utf8.ValidString(n))
		}
	})
}
