package normalize

import (
	"fmt"
	"strings"
	"unicode"
)

// snilsMinChecked is the first number whose check digits are defined: the Pension Fund's rule
// checks the control number "only for numbers greater than 001-001-998".
const snilsMinChecked = 1001998

// SNILS normalizes a СНИЛС (the Russian personal insurance account number) written as
// «112-233-445 95», «11223344595», «112 233 445 95» (with ordinary or no-break spaces, hyphens or
// dashes between the groups) and returns its 11 digits. It refuses anything else: letters, a
// wrong number of digits, a control number that does not hold, and numbers up to 001-001-998,
// whose control number the algorithm does not define and which the hub therefore cannot verify.
//
// The control number is the sum of the first nine digits weighted 9, 8, …, 1; a sum below 100 is
// the control number itself, 100 and 101 give 00, and a larger sum is taken modulo 101 with the
// same rule applied to the remainder (a remainder of 100 gives 00).
func SNILS(s string) (string, error) {
	var digits [11]byte
	n := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			if n < len(digits) {
				digits[n] = byte(r)
			}
			n++
		case isSNILSSeparator(r):
		default:
			return "", fmt.Errorf("%w: unexpected character %q (only digits, spaces and hyphens are allowed)", ErrSNILS, r)
		}
	}
	if n == 0 {
		return "", fmt.Errorf("%w: empty", ErrSNILS)
	}
	if n != len(digits) {
		return "", fmt.Errorf("%w: %d digits, want 11", ErrSNILS, n)
	}
	number := 0
	sum := 0
	for i := range 9 {
		d := int(digits[i] - '0')
		number = number*10 + d
		sum += d * (9 - i)
	}
	if number <= snilsMinChecked {
		return "", fmt.Errorf("%w: numbers up to 001-001-998 have no control number and cannot be verified", ErrSNILS)
	}
	want := snilsControl(sum)
	got := int(digits[9]-'0')*10 + int(digits[10]-'0')
	if got != want {
		return "", fmt.Errorf("%w: control number %02d does not match the number (want %02d)", ErrSNILS, got, want)
	}
	return string(digits[:]), nil
}

// SNILSControl returns the control number (0..99) of the nine-digit number of a СНИЛС given as a
// string of nine digits. It panics on anything else: it is for generators and tests that build
// numbers, not for checking input (use SNILS).
func SNILSControl(number string) int {
	if len(number) != 9 {
		panic(fmt.Sprintf("normalize.SNILSControl: %q is not nine digits", number))
	}
	sum := 0
	for i := range 9 {
		c := number[i]
		if c < '0' || c > '9' {
			panic(fmt.Sprintf("normalize.SNILSControl: %q is not nine digits", number))
		}
		sum += int(c-'0') * (9 - i)
	}
	return snilsControl(sum)
}

func snilsControl(sum int) int {
	if sum > 101 {
		sum %= 101
	}
	if sum == 100 || sum == 101 {
		return 0
	}
	return sum
}

// FormatSNILS writes 11 normalized digits the usual way, «112-233-445 95». Anything else is
// returned unchanged.
func FormatSNILS(digits string) string {
	if len(digits) != 11 || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return digits
	}
	return digits[0:3] + "-" + digits[3:6] + "-" + digits[6:9] + " " + digits[9:11]
}

// isSNILSSeparator accepts what people and office software put between the groups: spaces of any
// kind (NBSP, narrow NBSP, tabs), hyphens and dashes.
func isSNILSSeparator(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212', '\u00a0', '\u202f', '\u2007', '\ufeff':
		return true
	}
	return unicode.IsSpace(r)
}
