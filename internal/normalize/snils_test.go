package normalize_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
)

func TestSNILS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"printed form", "112-233-445 95", "11223344595", ""},
		{"bare digits", "11223344595", "11223344595", ""},
		{"spaces", "112 233 445 95", "11223344595", ""},
		{"no-break spaces", "112\u00a0233\u00a0445\u00a095", "11223344595", ""},
		{"narrow no-break space and en dash", "112\u2013233\u2013445\u202f95", "11223344595", ""},
		{"surrounding blanks and tab", "\t 112-233-445-95 ", "11223344595", ""},
		{"sum 99 is the control number", "412-402-211 99", "41240221199", ""},
		{"sum 100 gives 00", "132-109-302 00", "13210930200", ""},
		{"sum 101 gives 00", "404-003-712 00", "40400371200", ""},
		{"sum 201: remainder 100 gives 00", "637-345-331 00", "63734533100", ""},
		{"sum 202: remainder 0", "206-885-656 00", "20688565600", ""},
		{"sum 205: remainder 3", "505-943-596 03", "50594359603", ""},
		{"sum 204: remainder 2", "087-654-321 02", "08765432102", ""},
		{"first number with a control number", "001-001-999 65", "00100199965", ""},

		{"wrong control number", "112-233-445 96", "", "control number 96 does not match the number (want 95)"},
		{"remainder 100 written as 100 would be", "637-345-331 99", "", "want 00"},
		{"sum 100 written as 100", "132-109-302 10", "", "want 00"},
		{"transposed digits", "121-233-445 95", "", "does not match"},
		{"last unchecked number", "001-001-998 64", "", "numbers up to 001-001-998 have no control number"},
		{"all zeros", "000-000-000 00", "", "numbers up to 001-001-998"},
		{"ten digits", "112-233-445 9", "", "10 digits, want 11"},
		{"twelve digits", "112-233-445 950", "", "12 digits, want 11"},
		{"letters", "112-233-445 9O", "", `unexpected character 'O'`},
		{"empty", "", "", "empty"},
		{"only separators", " - ", "", "empty"},
		{"full-width digits", "１１２-233-445 95", "", "unexpected character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalize.SNILS(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, normalize.ErrSNILS)
				require.ErrorContains(t, err, tc.err)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSNILSControl(t *testing.T) {
	t.Parallel()
	require.Equal(t, 95, normalize.SNILSControl("112233445"))
	require.Equal(t, 0, normalize.SNILSControl("637345331"))
	require.Panics(t, func() { normalize.SNILSControl("11223344") })
	require.Panics(t, func() { normalize.SNILSControl("11223344x") })
}

func TestFormatSNILS(t *testing.T) {
	t.Parallel()
	require.Equal(t, "112-233-445 95", normalize.FormatSNILS("11223344595"))
	require.Equal(t, "1122", normalize.FormatSNILS("1122"))
}

// FuzzSNILS checks that SNILS never panics, that what it accepts is 11 digits it accepts again
// (also in the printed form), and that every error says it is about a СНИЛС.
func FuzzSNILS(f *testing.F) {
	for _, s := range []string{
		"112-233-445 95", "11223344595", "112 233 445 95", "112\u00a0233\u00a0445\u00a095",
		"637-345-331 00", "001-001-998 64", "000-000-000 00", "112-233-445 9", "abc", "", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normalize.SNILS(s)
		if err != nil {
			require.True(t, errors.Is(err, normalize.ErrSNILS), "error %v does not wrap ErrSNILS", err)
			require.True(t, utf8.ValidString(err.Error()), "errors quote bad input escaped")
			return
		}
		require.Len(t, got, 11)
		require.Empty(t, strings.Trim(got, "0123456789"))
		again, err := normalize.SNILS(normalize.FormatSNILS(got))
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}
