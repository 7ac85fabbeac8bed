package normalize

import (
	"fmt"
	"strings"
)

// currencyMarks are the ways Russian lists say "roubles" after (or before) an amount; they are
// dropped, since every amount the hub reads is in roubles.
var currencyMarks = []string{"рублей", "рубля", "рубль", "руб.", "руб", "р.", "₽", "rub", "rur"}

// maxAmountDigits bounds the integer part: no grant reaches a quadrillion roubles, and a longer
// run of digits is a pasted identifier, not an amount.
const maxAmountDigits = 15

// Amount reads a sum of money in roubles as Russian lists write it — «2 000 000,00»,
// «2 000 000,00 ₽», «1.500.000», «1500000.5», «1 500 000 руб.», with spaces, non-breaking or
// narrow non-breaking spaces between thousands — and returns it as a decimal string with exactly
// two kopeck digits: "2000000.00". It never goes through a float, so no kopeck is lost. A lone
// separator followed by exactly three digits («1.500», «1,500») could be thousands or a fraction;
// it is refused rather than guessed.
func Amount(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, m := range currencyMarks {
		if strings.HasSuffix(t, m) {
			t = strings.TrimSpace(strings.TrimSuffix(t, m))
			break
		}
		if strings.HasPrefix(t, m) && m != "р." {
			t = strings.TrimSpace(strings.TrimPrefix(t, m))
			break
		}
	}
	if t == "" {
		return "", fmt.Errorf("%w: amount is empty", ErrFormat)
	}
	var b strings.Builder
	var seps []int // positions of '.' and ',' in the compacted text
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '.' || r == ',':
			seps = append(seps, b.Len())
			b.WriteRune(r)
		case r == ' ' || r == '\u00a0' || r == '\u202f' || r == '\u2009' || r == '\'' || r == '\t':
			// thousands separators
		case r == '-' || r == '−':
			return "", fmt.Errorf("%w: amount %q is negative", ErrFormat, s)
		default:
			return "", fmt.Errorf("%w: amount %q holds %q; want digits with spaces or dots between thousands and a comma before kopecks, like «2 000 000,00»", ErrFormat, s, r)
		}
	}
	c := b.String()
	if !strings.ContainsAny(c, "0123456789") {
		return "", fmt.Errorf("%w: amount %q has no digits", ErrFormat, s)
	}
	if len(seps) == 0 {
		return amountString(s, c, "")
	}
	// The decimal separator, if any, is the last one, when it differs from the others or is alone
	// and not followed by a group of three digits.
	last := seps[len(seps)-1]
	lastCh := c[last]
	mixed := false
	for _, p := range seps[:len(seps)-1] {
		if c[p] != lastCh {
			mixed = true
		}
	}
	tail := len(c) - last - 1
	var intPart, frac string
	switch {
	case mixed:
		// «1.500.000,50» or «1,500,000.50»: the last separator is the decimal one.
		intPart, frac = c[:last], c[last+1:]
		for _, p := range seps[:len(seps)-1] {
			if c[p] == lastCh {
				return "", fmt.Errorf("%w: amount %q uses %q both between thousands and before kopecks", ErrFormat, s, lastCh)
			}
		}
	case len(seps) > 1:
		// «1.500.000» or «1,500,000»: all are thousands separators.
		intPart = c
	case tail == 3:
		return "", fmt.Errorf("%w: amount %q is ambiguous: %q before three digits may separate thousands or kopecks; write «%s» or «%s,%s»",
			ErrFormat, s, lastCh, c[:last]+c[last+1:], c[:last], c[last+1:last+3])
	default:
		intPart, frac = c[:last], c[last+1:]
	}
	if strings.ContainsAny(intPart, ".,") {
		groups := strings.FieldsFunc(intPart, func(r rune) bool { return r == '.' || r == ',' })
		if len(groups) == 0 || len(groups[0]) == 0 || len(groups[0]) > 3 || strings.HasPrefix(intPart, ".") ||
			strings.HasPrefix(intPart, ",") || strings.HasSuffix(intPart, ".") || strings.HasSuffix(intPart, ",") {
			return "", fmt.Errorf("%w: amount %q has misplaced thousands separators", ErrFormat, s)
		}
		n := 0
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return "", fmt.Errorf("%w: amount %q has a group of %d digits between thousands separators, want 3", ErrFormat, s, len(g))
			}
		}
		for _, g := range groups {
			n += len(g)
		}
		if n+len(groups)-1 != len(intPart) {
			return "", fmt.Errorf("%w: amount %q has misplaced thousands separators", ErrFormat, s)
		}
		intPart = strings.Join(groups, "")
	}
	return amountString(s, intPart, frac)
}

// amountString joins checked digits into the canonical form.
func amountString(orig, intPart, frac string) (string, error) {
	if intPart == "" {
		intPart = "0" // «,50»
	}
	if strings.ContainsAny(frac, ".,") {
		return "", fmt.Errorf("%w: amount %q has separators after its decimal point", ErrFormat, orig)
	}
	if len(frac) > 2 {
		// Kopecks are the smallest unit; trailing zeros are a spreadsheet's formatting.
		if strings.Trim(frac[2:], "0") != "" {
			return "", fmt.Errorf("%w: amount %q has fractions of a kopeck", ErrFormat, orig)
		}
		frac = frac[:2]
	}
	for len(frac) < 2 {
		frac += "0"
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	if len(intPart) > maxAmountDigits {
		return "", fmt.Errorf("%w: amount %q is too large for a sum of money", ErrFormat, truncate(orig, 40))
	}
	return intPart + "." + frac, nil
}
