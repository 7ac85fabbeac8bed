package normalize

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// noValue is what lists write in a field that has no value: the field is then junk, not empty.
func noValue(s string) bool {
	switch strings.ToLower(strings.Trim(s, " .")) {
	case "-", "–", "—", "нет", "не указан", "не указано", "отсутствует", "н/д", "нд", "n/a", "none", "null", "0":
		return true
	}
	return false
}

// hostProfile checks host names the way browsers look them up, Cyrillic ones (мфц.рф) included.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// Email normalizes an e-mail address: blanks and a «mailto:» prefix removed, the domain lower-cased
// (a Cyrillic domain stays readable, «почта@мфц.рф»); the local part is kept as written, since
// mail servers may tell its case apart. It refuses what is not one address: «нет», «-», no «@»,
// blanks inside, several addresses, a domain that is not a host name.
func Email(s string) (string, error) {
	t := strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '<' || r == '>' || r == '.' || r == ',' || r == ';'
	})
	if t == "" {
		return "", fmt.Errorf("%w: empty", ErrEmail)
	}
	if noValue(t) {
		return "", fmt.Errorf("%w: %q says there is no address", ErrEmail, s)
	}
	if len(t) > 7 && strings.EqualFold(t[:7], "mailto:") {
		t = t[7:]
	}
	if strings.IndexFunc(t, unicode.IsSpace) >= 0 || strings.ContainsAny(t, ",;") {
		if strings.Count(t, "@") > 1 {
			return "", fmt.Errorf("%w: %q holds several addresses, the field takes one", ErrEmail, s)
		}
		return "", fmt.Errorf("%w: %q has blanks inside", ErrEmail, s)
	}
	at := strings.LastIndexByte(t, '@')
	if at < 0 {
		return "", fmt.Errorf("%w: %q has no @", ErrEmail, s)
	}
	if strings.Count(t, "@") > 1 {
		return "", fmt.Errorf("%w: %q has more than one @", ErrEmail, s)
	}
	local, domain := t[:at], t[at+1:]
	if local == "" {
		return "", fmt.Errorf("%w: %q has nothing before the @", ErrEmail, s)
	}
	host, err := readableHost(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrEmail, s, err)
	}
	return norm.NFC.String(local) + "@" + host, nil
}

// readableHost lower-cases a host name and checks it, returning Cyrillic (IDN) names in Unicode:
// «МФЦ.РФ» and «xn--l1adj.xn--p1ai» both give «мфц.рф», which people can read and which stays the
// same however a source wrote it. It wants at least one dot: «localhost» is no public site.
func readableHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("no host name")
	}
	ascii, err := hostProfile.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("%q is not a host name: %w", host, err)
	}
	if !strings.Contains(strings.Trim(ascii, "."), ".") {
		return "", fmt.Errorf("%q is not a host name with a domain", host)
	}
	if strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", fmt.Errorf("%q has an empty label", host)
	}
	uni, err := hostProfile.ToUnicode(ascii)
	if err != nil {
		return "", fmt.Errorf("%q is not a host name: %w", host, err)
	}
	return uni, nil
}

// Website normalizes a web address: «http://» added when no scheme is written (it is what every
// site answers and redirects from; assuming «https://» would claim what the hub does not know), the
// host lower-cased and kept readable (see readableHost), a bare «/» path and trailing punctuation
// removed. It refuses «нет», «-», e-mail addresses, schemes other than http and https, blanks
// inside, and hosts that are not host names.
func Website(s string) (string, error) {
	t := strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == ',' || r == ';' || r == '.' || r == '"' || r == '«' || r == '»'
	})
	if t == "" {
		return "", fmt.Errorf("%w: empty", ErrWebsite)
	}
	if noValue(t) {
		return "", fmt.Errorf("%w: %q says there is no site", ErrWebsite, s)
	}
	if strings.IndexFunc(t, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("%w: %q has blanks inside (one address per field)", ErrWebsite, s)
	}
	lower := strings.ToLower(t)
	if strings.HasPrefix(lower, "mailto:") || (strings.Contains(t, "@") && !strings.Contains(t, "://")) {
		return "", fmt.Errorf("%w: %q is an e-mail address, not a site", ErrWebsite, s)
	}
	if i := strings.Index(t, "://"); i >= 0 {
		scheme := lower[:i]
		if scheme != "http" && scheme != "https" {
			return "", fmt.Errorf("%w: %q: scheme %q is not http or https", ErrWebsite, s, scheme)
		}
	} else {
		if strings.Contains(lower[:min(len(lower), 8)], ":") && !startsWithHostPort(lower) {
			return "", fmt.Errorf("%w: %q is not a web address", ErrWebsite, s)
		}
		t = "http://" + t
	}
	u, err := url.Parse(t)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrWebsite, s, err)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: %q has a user name in it", ErrWebsite, s)
	}
	host, err := readableHost(u.Hostname())
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrWebsite, s, err)
	}
	if p := u.Port(); p != "" {
		host += ":" + p
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = host
	if u.Path == "/" && u.RawQuery == "" && u.Fragment == "" {
		u.Path, u.RawPath = "", ""
	}
	out := u.String()
	// url.String escapes a Unicode host; the catalog keeps it readable.
	if esc := (&url.URL{Host: host}).String(); esc != "//"+host {
		out = strings.Replace(out, esc[2:], host, 1)
	}
	return out, nil
}

// startsWithHostPort tells «mos.ru:8080/x» (a host and port) from «ftp:...» (another scheme).
func startsWithHostPort(s string) bool {
	i := strings.IndexByte(s, ':')
	return i > 0 && strings.Contains(s[:i], ".") && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'
}
