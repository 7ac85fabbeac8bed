package normalize_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
)

func TestINN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		err      error
		msg      string
	}{
		{in: "7707083893", want: "7707083893"},             // ПАО Сбербанк
		{in: "7736207543", want: "7736207543"},             // ООО «Яндекс»
		{in: " 7710140679 ", want: "7710140679"},           // АО «Тинькофф Банк», padded
		{in: "7707 083 893", want: "7707083893"},           // grouped for reading
		{in: "7707\u00a0083\u00a0893", want: "7707083893"}, // non-breaking spaces
		{in: "500100732259", want: "500100732259"},         // a person's INN
		{in: "7707083894", err: normalize.ErrChecksum, msg: "control digit is 3"},
		{in: "500100732258", err: normalize.ErrChecksum, msg: "control digits are 59"},
		{in: "707083893", err: normalize.ErrFormat, msg: "leading zero"},
		{in: "77070838", err: normalize.ErrFormat, msg: "8 digits"},
		{in: "", err: normalize.ErrFormat, msg: "empty"},
		{in: "77O7083893", err: normalize.ErrFormat, msg: "only digits"},
		{in: "7.707083893E+09", err: normalize.ErrFormat, msg: "only digits"},
		{in: strings.Repeat("7", 40), err: normalize.ErrFormat, msg: "too long"},
	} {
		got, err := normalize.INN(tc.in)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.in)
			require.ErrorContains(t, err, tc.msg, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestOGRN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		err      error
		msg      string
	}{
		{in: "1027700132195", want: "1027700132195"}, // ПАО Сбербанк
		{in: "1027700229193", want: "1027700229193"}, // ООО «Яндекс»
		{in: "1 02 77 00 13219 5", want: "1027700132195"},
		{in: "1027700132194", err: normalize.ErrChecksum, msg: "control digit is 5"},
		{in: "102770013219", err: normalize.ErrFormat, msg: "want 13"},
		{in: "304500116000157", err: normalize.ErrFormat, msg: "ОГРНИП"},
		{in: "1027700132195a", err: normalize.ErrFormat, msg: "only digits"},
	} {
		got, err := normalize.OGRN(tc.in)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.in)
			require.ErrorContains(t, err, tc.msg, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestOGRNIP(t *testing.T) {
	t.Parallel()
	got, err := normalize.OGRNIP("304500116000157")
	require.NoError(t, err)
	require.Equal(t, "304500116000157", got)
	_, err = normalize.OGRNIP("304500116000158")
	require.ErrorIs(t, err, normalize.ErrChecksum)
	_, err = normalize.OGRNIP("1027700132195")
	require.ErrorIs(t, err, normalize.ErrFormat)
	require.ErrorContains(t, err, "organization's number")
}

func TestAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{in: "2 000 000,00", want: "2000000.00"},
		{in: "2 000 000,00 ₽", want: "2000000.00"},
		{in: "2\u00a0000\u00a0000,00\u00a0₽", want: "2000000.00"},
		{in: "2\u202f000\u202f000,5", want: "2000000.50"},
		{in: "1.500.000", want: "1500000.00"},
		{in: "1.500.000,75", want: "1500000.75"},
		{in: "1,500,000.75", want: "1500000.75"},
		{in: "1500000.5", want: "1500000.50"},
		{in: "1500000", want: "1500000.00"},
		{in: "1 500 000 руб.", want: "1500000.00"},
		{in: "1 500 000 руб", want: "1500000.00"},
		{in: "499 999,99 рублей", want: "499999.99"},
		{in: "₽ 12 345,6", want: "12345.60"},
		{in: "0,99", want: "0.99"},
		{in: ",5", want: "0.50"},
		{in: "00120", want: "120.00"},
		{in: "1500000.5000", want: "1500000.50"},                // a spreadsheet's trailing zeros
		{in: "9007199254740993,01", want: "", err: "too large"}, // 16 digits: not an amount
		{in: "900719925474099,01", want: "900719925474099.01"},  // beyond float64's exact integers
		{in: "", err: "empty"},
		{in: "руб.", err: "empty"},
		{in: ",", err: "no digits"},
		{in: "1.500", err: "ambiguous"},
		{in: "1,500", err: "ambiguous"},
		{in: "1.50.000", err: "group of 2 digits"},
		{in: "1.500.000.5", err: "group of 1 digits"},
		{in: "1,500,000,50", err: "group of 2 digits"},
		{in: "1.500,000,50", err: "both between thousands and before kopecks"},
		{in: "-500,00", err: "negative"},
		{in: "500 USD", err: "holds"},
		{in: "два миллиона", err: "holds"},
		{in: "1500000,555", err: "ambiguous"},
		{in: "1500000,5551", err: "fractions of a kopeck"},
	} {
		got, err := normalize.Amount(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, normalize.ErrFormat, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// FuzzINN: INN never panics, and what it accepts is canonical and accepted again unchanged.
func FuzzINN(f *testing.F) {
	for _, s := range []string{"7707083893", "500100732259", "7707 083 893", "7707083894", "", "77O7083893", "\u00a0-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normalize.INN(s)
		if err != nil {
			require.Empty(t, got)
			return
		}
		require.True(t, len(got) == 10 || len(got) == 12, got)
		again, err := normalize.INN(got)
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}

// FuzzOGRN does the same for OGRN and OGRNIP.
func FuzzOGRN(f *testing.F) {
	for _, s := range []string{"1027700132195", "304500116000157", "1027700132194", "1 02 77", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := normalize.OGRN(s); err == nil {
			require.Len(t, got, 13)
			again, err := normalize.OGRN(got)
			require.NoError(t, err)
			require.Equal(t, got, again)
		}
		if got, err := normalize.OGRNIP(s); err == nil {
			require.Len(t, got, 15)
		}
	})
}

// FuzzAmount: Amount never panics, and what it accepts reads back as itself.
func FuzzAmount(f *testing.F) {
	for _, s := range []string{"2 000 000,00 ₽", "1.500.000", "1500000.5", "1,500", "руб.", "-1", ",", "1.500,000,50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normalize.Amount(s)
		if err != nil {
			return
		}
		again, err := normalize.Amount(got)
		require.NoError(t, err, "canonical %q of %q", got, s)
		require.Equal(t, got, again)
	})
}
