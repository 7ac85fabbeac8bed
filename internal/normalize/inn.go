package normalize

import (
	"fmt"
	"strings"
	"unicode"
)

// Weights of the INN control digits (Приказ ФНС России от 29.06.2012 № ММВ-7-6/435@).
var (
	innWeights10 = [...]int{2, 4, 10, 3, 5, 9, 4, 6, 8}
	innWeights11 = [...]int{7, 2, 4, 10, 3, 5, 9, 4, 6, 8}
	innWeights12 = [...]int{3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8}
)

// INN checks a taxpayer number (ИНН): 10 digits for a legal entity, 12 for a person or an
// individual entrepreneur, with their control digits. Spaces, non-breaking spaces and dashes
// between digits are dropped, since lists group digits for reading; nothing else is forgiven.
func INN(s string) (string, error) {
	d, err := digitsOf("ИНН", s)
	if err != nil {
		return "", err
	}
	switch len(d) {
	case 10:
		if c := weighted(d, innWeights10[:]); c != d[9] {
			return "", fmt.Errorf("%w: ИНН %s: control digit is %d, the number ends in %d (a mistyped digit?)", ErrChecksum, digitString(d), c, d[9])
		}
	case 12:
		c11, c12 := weighted(d, innWeights11[:]), weighted(d, innWeights12[:])
		if c11 != d[10] || c12 != d[11] {
			return "", fmt.Errorf("%w: ИНН %s: control digits are %d%d, the number ends in %d%d (a mistyped digit?)", ErrChecksum, digitString(d), c11, c12, d[10], d[11])
		}
	case 9, 11:
		return "", fmt.Errorf("%w: ИНН %q has %d digits, want 10 (organization) or 12 (person); a spreadsheet may have dropped a leading zero", ErrFormat, s, len(d))
	default:
		return "", fmt.Errorf("%w: ИНН %q has %d digits, want 10 (organization) or 12 (person)", ErrFormat, s, len(d))
	}
	return digitString(d), nil
}

// OGRN checks a primary state registration number of a legal entity (ОГРН): 13 digits, the last
// being the first twelve, as a number, modulo 11 (and modulo 10 when that is 10).
func OGRN(s string) (string, error) {
	return registrationNumber("ОГРН", s, 13, 11)
}

// OGRNIP checks the registration number of an individual entrepreneur (ОГРНИП): 15 digits, the
// last being the first fourteen modulo 13 (and modulo 10).
func OGRNIP(s string) (string, error) {
	return registrationNumber("ОГРНИП", s, 15, 13)
}

func registrationNumber(name, s string, n int, mod int64) (string, error) {
	d, err := digitsOf(name, s)
	if err != nil {
		return "", err
	}
	if len(d) != n {
		hint := ""
		switch {
		case name == "ОГРН" && len(d) == 15:
			hint = " (15 digits is an ОГРНИП, an entrepreneur's number)"
		case name == "ОГРНИП" && len(d) == 13:
			hint = " (13 digits is an ОГРН, an organization's number)"
		}
		return "", fmt.Errorf("%w: %s %q has %d digits, want %d%s", ErrFormat, name, s, len(d), n, hint)
	}
	var rem int64
	for _, x := range d[:n-1] {
		rem = (rem*10 + int64(x)) % mod
	}
	if c := int(rem % 10); c != d[n-1] {
		return "", fmt.Errorf("%w: %s %s: control digit is %d, the number ends in %d (a mistyped digit?)", ErrChecksum, name, digitString(d), c, d[n-1])
	}
	return digitString(d), nil
}

// digitsOf returns the digits of s, dropping the separators people put between them.
func digitsOf(name, s string) ([]int, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrFormat, name)
	}
	d := make([]int, 0, 15)
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			d = append(d, int(r-'0'))
		case r == '-' || unicode.IsSpace(r) || r == '\u00a0' || r == '\u202f':
		default:
			return nil, fmt.Errorf("%w: %s %q holds %q; only digits are allowed", ErrFormat, name, s, r)
		}
		if len(d) > 20 {
			return nil, fmt.Errorf("%w: %s %q is far too long", ErrFormat, name, truncate(s, 40))
		}
	}
	return d, nil
}

// weighted is the INN control digit of the len(w) digits before it.
func weighted(d []int, w []int) int {
	s := 0
	for i, x := range w {
		s += x * d[i]
	}
	return s % 11 % 10
}

func digitString(d []int) string {
	b := make([]byte, len(d))
	for i, x := range d {
		b[i] = byte('0' + x)
	}
	return string(b)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
