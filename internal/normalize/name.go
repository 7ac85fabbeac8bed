package normalize

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Name normalizes the display name of an organization, service or location: Unicode NFC (so «й»
// typed as и + breve equals «й»), quotes of every kind («», „“, “”, "") written as «», blanks and
// line breaks collapsed to one space. It keeps every word, legal forms included: MatchKey is for
// comparing.
func Name(s string) string {
	if isNormalASCIIName(s) {
		return s
	}
	s = norm.NFC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	prev := rune(0) // the last rune written, ' ' for a pending blank
	depth := 0
	for _, r := range s {
		if unicode.IsSpace(r) || r == '\u00a0' || r == '\u200b' || r == '\ufeff' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			prev = ' '
		}
		space = false
		switch r {
		case '«', '„':
			r = '«'
			depth++
		case '»':
			depth = max(depth-1, 0)
		case '"', '“', '”':
			// A straight or English quote opens at the start, after a blank or a bracket, or inside
			// nothing open; otherwise it closes.
			if depth > 0 && !(prev == 0 || prev == ' ' || prev == '(' || prev == '«') {
				r = '»'
				depth--
			} else if prev == 0 || prev == ' ' || prev == '(' || prev == '«' || depth == 0 {
				r = '«'
				depth++
			} else {
				r = '»'
				depth = max(depth-1, 0)
			}
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

// isNormalASCIIName is the fast path: printable ASCII without quotes or double blanks is already
// normal.
func isNormalASCIIName(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == ' ' && s[i+1] == ' ' {
			return false
		}
	}
	return true
}

// legalForms maps the long forms of Russian legal forms and institution types to their usual
// abbreviations, in lower case with е for ё; longer phrases come first, so «государственное
// бюджетное учреждение здравоохранения» is not read as ГБУ + «здравоохранения».
var legalForms = []struct{ long, short string }{
	{"государственное бюджетное общеобразовательное учреждение", "гбоу"},
	{"государственное бюджетное образовательное учреждение", "гбоу"},
	{"государственное бюджетное учреждение здравоохранения", "гбуз"},
	{"государственное бюджетное учреждение социального обслуживания", "гбусо"},
	{"государственное бюджетное учреждение культуры", "гбук"},
	{"государственное бюджетное учреждение", "гбу"},
	{"государственное казенное учреждение", "гку"},
	{"государственное автономное учреждение", "гау"},
	{"государственное унитарное предприятие", "гуп"},
	{"федеральное государственное бюджетное учреждение", "фгбу"},
	{"территориальный центр социального обслуживания", "тцсо"},
	{"центр социального обслуживания", "цсо"},
	{"многофункциональный центр предоставления государственных услуг", "мфц"},
	{"многофункциональный центр", "мфц"},
	{"автономная некоммерческая организация", "ано"},
	{"некоммерческая организация", "нко"},
	{"некоммерческое партнерство", "нп"},
	{"благотворительный фонд", "бф"},
	{"благотворительная общественная организация", "боо"},
	{"региональная общественная организация", "роо"},
	{"межрегиональная общественная организация", "моо"},
	{"местная общественная организация", "моо"},
	{"общероссийская общественная организация", "ооо"},
	{"общественная организация", "оо"},
	{"общество с ограниченной ответственностью", "ооо"},
	{"публичное акционерное общество", "пао"},
	{"акционерное общество", "ао"},
	{"частное учреждение", "чу"},
	{"индивидуальный предприниматель", "ип"},
	{"города москвы", "г москвы"},
	{"город москва", "г москва"},
}

var legalFormWords = func() [][]string {
	out := make([][]string, len(legalForms))
	for i, f := range legalForms {
		out[i] = strings.Fields(f.long)
	}
	return out
}()

// MatchKey returns the key two names of one organization share however a source wrote them: lower
// case, е for ё, quotes and punctuation dropped, and legal forms written long replaced by their
// abbreviation, so «Государственное бюджетное учреждение "ТЦСО «Марьино»"», «ГБУ ТЦСО Марьино» and
// «гбу территориальный центр социального обслуживания марьино» all give «гбу тцсо марьино». It is
// for finding duplicates, never for display.
func MatchKey(name string) string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() > 0 {
			words = append(words, w.String())
			w.Reset()
		}
	}
	for _, r := range norm.NFC.String(name) {
		switch {
		case r == 'ё' || r == 'Ё':
			w.WriteRune('е')
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			w.WriteRune(unicode.ToLower(r))
		case r == '№':
			flush()
			words = append(words, "№")
		default:
			flush()
		}
	}
	flush()
	out := make([]string, 0, len(words))
	for i := 0; i < len(words); {
		matched := false
		for k, long := range legalFormWords {
			if i+len(long) <= len(words) && equalWords(words[i:i+len(long)], long) {
				out = append(out, legalForms[k].short)
				i += len(long)
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, words[i])
			i++
		}
	}
	return strings.Join(out, " ")
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
