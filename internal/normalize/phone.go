package normalize

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// PhoneRegion is the region numbers without a country code are read in.
const PhoneRegion = "RU"

// maxExtension bounds an extension: HSDS stores it as a number, and office extensions are short.
const maxExtensionDigits = 7

// Phone is one telephone number read from a field.
type Phone struct {
	Number    string // E.164, e.g. +74951234567
	Extension string // digits of the extension («доб. 123»), "" when none
	Type      string // "fax" when the field labels the number a fax, "" otherwise
	Note      string // words written next to the number («приёмная»), "" when none
}

// Phones reads a phone field as Russian service lists write it: «8 (495) 123-45-67»,
// «+7 495 123 45 67 доб. 123», several numbers separated by «,», «;», «/», « или » or line breaks,
// labels like «тел.:» or «факс». It returns every number in E.164 with its extension, or an error
// wrapping ErrPhone that names the piece it could not read: a field with one unreadable number is
// rejected whole, since dropping a number would lose it silently.
func Phones(s string) ([]Phone, error) {
	pieces := splitPhones(s)
	if len(pieces) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrPhone)
	}
	out := make([]Phone, 0, len(pieces))
	for _, piece := range pieces {
		// «8 (495) 123-45-67, доб. 123»: an extension split off by the list separator belongs to the
		// number before it.
		if ext, rest, ok := cutExtension(piece); ok && strings.TrimFunc(rest, isPhoneJunk) == "" {
			if len(out) == 0 || out[len(out)-1].Extension != "" {
				return nil, fmt.Errorf("%w: extension %q without a number", ErrPhone, piece)
			}
			if ext == "" {
				return nil, fmt.Errorf("%w: extension without digits in %q", ErrPhone, piece)
			}
			out[len(out)-1].Extension = ext
			continue
		}
		p, err := onePhone(piece)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// splitPhones cuts a field into one piece per number.
func splitPhones(s string) []string {
	var pieces []string
	start := 0
	add := func(end int) {
		if p := strings.TrimFunc(s[start:end], isPhoneJunk); p != "" {
			pieces = append(pieces, p)
		}
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == ',' || r == ';' || r == '/' || r == '\n' || r == '\r' || r == '|':
			add(i)
			start = i + size
		case unicode.IsSpace(r) && hasWordAt(s, i+size, "или"):
			add(i)
			i += size + len("или")
			start = i
			continue
		}
		i += size
	}
	add(len(s))
	return pieces
}

// hasWordAt reports whether the word w, followed by a space or the end, starts at s[i:].
func hasWordAt(s string, i int, w string) bool {
	if !strings.HasPrefix(s[i:], w) {
		return false
	}
	j := i + len(w)
	if j == len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[j:])
	return unicode.IsSpace(r)
}

// isPhoneJunk is what surrounds numbers in a list: blanks, list punctuation, stray dots.
func isPhoneJunk(r rune) bool {
	return unicode.IsSpace(r) || r == ',' || r == ';' || r == ':' || r == '.' || r == '\u00a0' || r == '\ufeff'
}

var phoneLabels = []struct {
	prefix string
	fax    bool
}{
	{"телефон", false}, {"тел", false}, {"т", false}, {"моб", false}, {"сот", false},
	{"tel", false}, {"phone", false}, {"факс", true}, {"fax", true}, {"ф", true},
}

// extensionMarkers introduce an extension, longest first.
var extensionMarkers = []string{"добавочный", "внутренний", "extension", "внутр", "доб", "вн", "ext", "x", "#"}

// onePhone reads one number with its label, extension and note.
func onePhone(piece string) (Phone, error) {
	var p Phone
	rest := piece
	// Leading labels: «тел.:», «Телефон», «факс».
	for {
		lower := strings.ToLower(rest)
		found := false
		for _, l := range phoneLabels {
			if strings.HasPrefix(lower, l.prefix) {
				after := rest[len(l.prefix):]
				r, _ := utf8.DecodeRuneInString(after)
				if after == "" || !(unicode.IsLetter(r)) {
					rest = strings.TrimFunc(after, isPhoneJunk)
					if l.fax {
						p.Type = "fax"
					}
					found = true
					break
				}
			}
		}
		if !found {
			break
		}
	}
	// The number: digits and what people put between them.
	end := 0
	digits := 0
	for i, r := range rest {
		if r >= '0' && r <= '9' {
			digits++
		} else if !isNumberPunct(r) {
			break
		}
		end = i + utf8.RuneLen(r)
	}
	if digits == 0 {
		return Phone{}, fmt.Errorf("%w: %q is not a phone number", ErrPhone, piece)
	}
	number, tail := rest[:end], strings.TrimSpace(rest[end:])
	if ext, after, ok := cutExtension(tail); ok {
		if ext == "" {
			return Phone{}, fmt.Errorf("%w: extension without digits in %q", ErrPhone, piece)
		}
		p.Extension = ext
		tail = after
	}
	tail = strings.TrimFunc(tail, func(r rune) bool { return isPhoneJunk(r) || r == '(' || r == ')' || r == '-' })
	if tail != "" {
		if strings.IndexFunc(tail, unicode.IsLetter) < 0 {
			return Phone{}, fmt.Errorf("%w: unexpected %q after the number in %q", ErrPhone, tail, piece)
		}
		p.Note = tail
	}
	num, ok := russianNumber(number)
	if !ok {
		var err error
		if num, err = phonenumbers.Parse(number, PhoneRegion); err != nil {
			return Phone{}, fmt.Errorf("%w: %q: %v", ErrPhone, piece, err)
		}
	}
	if !phonenumbers.IsValidNumber(num) {
		return Phone{}, fmt.Errorf("%w: %q is not a valid number (wrong length or no such code)", ErrPhone, piece)
	}
	if p.Extension == "" && num.GetExtension() != "" {
		p.Extension = num.GetExtension()
	}
	p.Number = phonenumbers.Format(num, phonenumbers.E164)
	return p, nil
}

// russianNumber is the fast path for how Russian lists write nearly every number: «8 …» or
// «+7 …» with 11 digits, or 10 digits alone. It skips the general parser's regular expressions;
// the number is still checked against the numbering plan by IsValidNumber.
func russianNumber(s string) (*phonenumbers.PhoneNumber, bool) {
	var national uint64
	digits, plus := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 0 && !plus && c == '8' || digits == 0 && plus && c == '7' {
				digits++
				continue // the trunk prefix or the country code
			}
			if digits == 0 && plus {
				return nil, false // another country
			}
			national = national*10 + uint64(c-'0')
			digits++
		case c == '+':
			if digits > 0 || plus {
				return nil, false
			}
			plus = true
		}
	}
	if digits != 11 && !(digits == 10 && !plus && national >= 1e9) {
		return nil, false
	}
	if national < 1e9 || national >= 1e10 {
		return nil, false
	}
	cc := int32(7)
	return &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}, true
}

func isNumberPunct(r rune) bool {
	switch r {
	case '+', '(', ')', '-', '.', ' ', '\u00a0', '\u202f', '\u2007', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212', '\t':
		return true
	}
	return false
}

// cutExtension reads «доб. 123», «(вн. 45)», «ext. 7» at the start of s (after blanks and an
// opening parenthesis). ok says a marker was there; ext is its digits ("" when none followed).
func cutExtension(s string) (ext, rest string, ok bool) {
	t := strings.TrimLeft(s, " \t\u00a0,(")
	lower := strings.ToLower(t)
	for _, m := range extensionMarkers {
		if !strings.HasPrefix(lower, m) {
			continue
		}
		after := t[len(m):]
		if r, _ := utf8.DecodeRuneInString(after); unicode.IsLetter(r) {
			// «доб» must not match the start of another word; «x7» and «#7» need digits right away.
			continue
		}
		after = strings.TrimLeft(after, " \t\u00a0.:№-")
		n := 0
		for n < len(after) && after[n] >= '0' && after[n] <= '9' {
			n++
		}
		if n > maxExtensionDigits {
			return "", s, false
		}
		return after[:n], strings.TrimLeft(after[n:], " )"), true
	}
	return "", s, false
}

// ExtensionNumber returns an extension as the number HSDS stores; ok is false when it is not one.
func ExtensionNumber(ext string) (int, bool) {
	n, err := strconv.Atoi(ext)
	return n, err == nil && n >= 0
}
