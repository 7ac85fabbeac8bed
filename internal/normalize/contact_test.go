package normalize_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
)

func TestPhones(t *testing.T) {
	t.Parallel()
	type P = normalize.Phone
	for _, tc := range []struct {
		name, in string
		want     []P
		err      string
	}{
		{"trunk prefix 8", "8 (495) 123-45-67", []P{{Number: "+74951234567"}}, ""},
		{"two numbers with a comma", "8 (495) 123-45-67, 8-800-200-01-22", []P{{Number: "+74951234567"}, {Number: "+78002000122"}}, ""},
		{"semicolon and mobile", "+7 (495) 123-45-67; +7 916 123-45-67", []P{{Number: "+74951234567"}, {Number: "+79161234567"}}, ""},
		{"slash", "8(499)765-43-21 / 8(499)765-43-22", []P{{Number: "+74997654321"}, {Number: "+74997654322"}}, ""},
		{"или", "8 (495) 123-45-67 или 8 (499) 111-22-33", []P{{Number: "+74951234567"}, {Number: "+74991112233"}}, ""},
		{"доб.", "+7 (495) 123-45-67 доб. 123", []P{{Number: "+74951234567", Extension: "123"}}, ""},
		{"вн. in brackets with a label", "тел.: 8(499)765-43-21 (вн. 45)", []P{{Number: "+74997654321", Extension: "45"}}, ""},
		{"ext.", "+7 495 123 45 67 ext. 7", []P{{Number: "+74951234567", Extension: "7"}}, ""},
		{"extension after the separator", "8 (495) 123-45-67, доб. 12", []P{{Number: "+74951234567", Extension: "12"}}, ""},
		{"fax", "факс 8 (495) 123-45-68", []P{{Number: "+74951234568", Type: "fax"}}, ""},
		{"note", "8 (495) 123-45-67 (приёмная)", []P{{Number: "+74951234567", Note: "приёмная"}}, ""},
		{"no-break spaces and en dashes", "8\u00a0495\u00a0123–45–67", []P{{Number: "+74951234567"}}, ""},
		{"already E.164", "+74951234567", []P{{Number: "+74951234567"}}, ""},

		{"нет", "нет", nil, `"нет" is not a phone number`},
		{"dash", "-", nil, "is not a phone number"},
		{"empty", " , ", nil, "empty"},
		{"too short", "123-45", nil, "is not a valid number"},
		{"shorthand suffix", "8 (495) 123-45-67/68", nil, `"68" is not a valid number`},
		{"digits after", "8 (495) 123-45-67 12", nil, "is not a valid number"},
		{"extension without digits", "8 (495) 123-45-67 доб.", nil, "extension without digits"},
		{"words", "звонить в приёмную", nil, "is not a phone number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalize.Phones(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, normalize.ErrPhone)
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// FuzzPhones: never panics; errors wrap ErrPhone; every accepted number is E.164 and reads back as
// itself.
func FuzzPhones(f *testing.F) {
	for _, s := range []string{"8 (495) 123-45-67, 8-800-200-01-22", "+7 495 123 45 67 доб. 123", "тел.: 8(499)765-43-21 (вн. 45)", "нет", "-", "", "доб. 5", "+1 212 555 0100 ext. 7", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normalize.Phones(s)
		if err != nil {
			require.True(t, errors.Is(err, normalize.ErrPhone))
			return
		}
		require.NotEmpty(t, got)
		for _, p := range got {
			again, err := normalize.Phones(p.Number)
			require.NoError(t, err)
			require.Equal(t, []normalize.Phone{{Number: p.Number}}, again)
		}
	})
}

func TestEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{" Info@TCSO-Marino.MOS.RU ", "Info@tcso-marino.mos.ru", ""},
		{"mailto:priem@social.mos.ru", "priem@social.mos.ru", ""},
		{"<dszn@mos.ru>", "dszn@mos.ru", ""},
		{"почта@МФЦ.РФ", "почта@мфц.рф", ""},
		{"нет", "", "says there is no address"},
		{"-", "", "says there is no address"},
		{"не-почта", "", "has no @"},
		{"a b@mos.ru", "", "blanks inside"},
		{"a@mos.ru, b@mos.ru", "", "several addresses"},
		{"a@@mos.ru", "", "more than one @"},
		{"@mos.ru", "", "nothing before the @"},
		{"info@localhost", "", "not a host name with a domain"},
	} {
		got, err := normalize.Email(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, normalize.ErrEmail, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestWebsite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{"mos.ru", "http://mos.ru", ""},
		{"www.mos.ru/", "http://www.mos.ru", ""},
		{"HTTPS://Dszn.MOS.ru/about/", "https://dszn.mos.ru/about/", ""},
		{"мфц.рф", "http://мфц.рф", ""},
		{"https://xn--l1adj.xn--p1ai/", "https://осм.рф", ""},
		{"«https://mos.ru/uslugi».", "https://mos.ru/uslugi", ""},
		{"https://mos.ru:8443/a?b=1", "https://mos.ru:8443/a?b=1", ""},
		{"нет", "", "says there is no site"},
		{"-", "", "says there is no site"},
		{"info@mos.ru", "", "is an e-mail address"},
		{"ftp://files.mos.ru", "", `scheme "ftp"`},
		{"ftp//broken", "", "not a host name with a domain"},
		{"mos.ru, dszn.mos.ru", "", "blanks inside"},
	} {
		got, err := normalize.Website(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, normalize.ErrWebsite, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// FuzzEmailWebsite: never panics; errors wrap their sentinel; accepted values are fixed points.
func FuzzEmailWebsite(f *testing.F) {
	for _, s := range []string{"Info@MOS.RU", "mos.ru", "https://мфц.рф/", "нет", "ftp//broken", "a@b@c", "http://[::1]/", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := normalize.Email(s); err != nil {
			require.True(t, errors.Is(err, normalize.ErrEmail))
		} else {
			again, err := normalize.Email(e)
			require.NoError(t, err)
			require.Equal(t, e, again)
		}
		if w, err := normalize.Website(s); err != nil {
			require.True(t, errors.Is(err, normalize.ErrWebsite))
		} else {
			again, err := normalize.Website(w)
			require.NoError(t, err)
			require.Equal(t, w, again)
		}
	})
}
