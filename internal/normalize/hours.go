package normalize

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OpeningInterval is one HSDS 3.0 schedule's worth of opening hours: weekly on the days of ByDay
// (RFC 5545 codes in week order, «MO,TU,WE,TH,FR»), from OpensAt to ClosesAt (HH:MM, Moscow time).
// A lunch break splits a day into two intervals, since HSDS has no field for breaks; a service
// open round the clock is open 00:00–24:00 (ISO 8601's end of the day).
type OpeningInterval struct {
	ByDay    string
	OpensAt  string
	ClosesAt string
}

// Freq is the RFC 5545 frequency of every OpeningInterval.
const Freq = "WEEKLY"

var dayCodes = [7]string{"MO", "TU", "WE", "TH", "FR", "SA", "SU"}

// OpeningHours reads opening hours as Russian sites write them — «пн-пт 9:00–18:00, сб 10:00-16:00,
// обед 13:00-14:00», «ежедневно с 8 до 20», «круглосуточно», «вых. — вс», «Пн.-Чт.: 09.00-18.00;
// Пт.: 09.00-16.45», «будни 8:00-20:00, выходные 10:00-18:00» — into weekly intervals. A later
// clause for a day replaces an earlier one («ежедневно 9-21, вс 10-18»); a lunch break («обед»,
// «перерыв») is cut out of every interval that holds it. Anything it does not understand — a word
// it does not know, a time without days, a break no interval holds — makes it return an error
// wrapping ErrHours: the caller keeps the text as the schedule's description, and nothing is
// invented.
func OpeningHours(s string) ([]OpeningInterval, error) {
	toks, err := lexHours(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrHours)
	}
	var (
		week     [7][]span // intervals of each day
		setBy    [7]int    // the clause that set each day's intervals (0: none)
		closed   [7]bool
		days     uint8 // the days the clause being read is about
		clause   = 1
		timed    bool // the current days got times
		closing  bool // a «выходной» marker waits for its days
		breaks   []span
		anyTimes bool
	)
	newDays := func() {
		if timed || closing {
			days, timed = 0, false
		}
	}
	apply := func(sp span) error {
		if days == 0 {
			return fmt.Errorf("%w: %q: hours %s without days", ErrHours, s, sp)
		}
		for d := range 7 {
			if days&(1<<d) == 0 {
				continue
			}
			if setBy[d] != clause {
				week[d], setBy[d] = week[d][:0], clause
			}
			week[d] = append(week[d], sp)
		}
		timed, anyTimes = true, true
		return nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokDays:
			if closing && !timed && days == 0 {
				markClosed(&closed, t.days)
				continue
			}
			newDays()
			if !timed && days != 0 && i > 0 && toks[i-1].kind == tokSep {
				// «вт, чт 10:00–19:00»: a list of days.
				days |= t.days
				continue
			}
			days |= t.days
			clause++
		case tokEveryDay:
			newDays()
			days |= 0x7f
			clause++
		case tokRoundClock:
			if days == 0 {
				days = 0x7f
				clause++
			}
			if err := apply(span{0, 24 * 60}); err != nil {
				return nil, err
			}
		case tokSpan:
			if err := apply(t.span); err != nil {
				return nil, err
			}
		case tokBreak:
			if i+1 >= len(toks) || toks[i+1].kind != tokSpan {
				return nil, fmt.Errorf("%w: %q: a break without its hours", ErrHours, s)
			}
			i++
			breaks = append(breaks, toks[i].span)
		case tokNoBreak:
		case tokDayOff:
			if days != 0 && !timed {
				// «сб, вс — выходные»
				markClosed(&closed, days)
				days = 0
				continue
			}
			days, timed, closing = 0, false, true
			continue
		case tokSep:
			continue
		}
		if t.kind != tokDays || !closing {
			closing = false
		}
	}
	if !anyTimes {
		return nil, fmt.Errorf("%w: %q: no hours", ErrHours, s)
	}
	if days != 0 && !timed {
		return nil, fmt.Errorf("%w: %q: days without hours at the end", ErrHours, s)
	}
	for d := range 7 {
		if closed[d] && len(week[d]) > 0 {
			return nil, fmt.Errorf("%w: %q: %s is both open and a day off", ErrHours, s, dayCodes[d])
		}
	}
	for _, b := range breaks {
		used := false
		for d := range 7 {
			var out []span
			for _, sp := range week[d] {
				if b.from > sp.from && b.to < sp.to {
					out = append(out, span{sp.from, b.from}, span{b.to, sp.to})
					used = true
				} else {
					out = append(out, sp)
				}
			}
			week[d] = out
		}
		if !used {
			return nil, fmt.Errorf("%w: %q: the break %s is outside the opening hours", ErrHours, s, b)
		}
	}
	return groupWeek(&week), nil
}

func markClosed(closed *[7]bool, days uint8) {
	for d := range 7 {
		if days&(1<<d) != 0 {
			closed[d] = true
		}
	}
}

// groupWeek gives one interval per distinct hours, with every day that has them, in week order.
func groupWeek(week *[7][]span) []OpeningInterval {
	var out []OpeningInterval
	var done uint8
	for d := range 7 {
		if done&(1<<d) != 0 || len(week[d]) == 0 {
			continue
		}
		spans := week[d]
		slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
		spans = slices.Compact(spans)
		week[d] = spans
		var b strings.Builder
		for e := d; e < 7; e++ {
			if done&(1<<e) != 0 {
				continue
			}
			other := week[e]
			slices.SortFunc(other, func(a, b span) int { return a.from - b.from })
			other = slices.Compact(other)
			week[e] = other
			if slices.Equal(spans, other) {
				done |= 1 << e
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(dayCodes[e])
			}
		}
		for _, sp := range spans {
			out = append(out, OpeningInterval{ByDay: b.String(), OpensAt: clock(sp.from), ClosesAt: clock(sp.to)})
		}
	}
	return out
}

// span is an interval of the day in minutes; to may be below from for hours past midnight.
type span struct{ from, to int }

func (s span) String() string { return clock(s.from) + "–" + clock(s.to) }

func clock(m int) string {
	return string([]byte{byte('0' + m/600), byte('0' + m/60%10), ':', byte('0' + m%60/10), byte('0' + m%10)})
}

type tokKind uint8

const (
	tokSep tokKind = iota
	tokDays
	tokEveryDay
	tokRoundClock
	tokSpan
	tokBreak
	tokNoBreak
	tokDayOff
)

type hoursTok struct {
	kind tokKind
	days uint8
	span span
}

// dayWords maps how days are written to their index, Monday first.
var dayWords = map[string]int{
	"пн": 0, "пнд": 0, "пон": 0, "понед": 0, "понедельник": 0, "понедельника": 0,
	"вт": 1, "втр": 1, "вторник": 1, "вторника": 1,
	"ср": 2, "срд": 2, "среда": 2, "среды": 2, "среду": 2,
	"чт": 3, "чтв": 3, "чет": 3, "четв": 3, "четверг": 3, "четверга": 3,
	"пт": 4, "птн": 4, "пят": 4, "пятн": 4, "пятница": 4, "пятницы": 4, "пятницу": 4,
	"сб": 5, "суб": 5, "субб": 5, "суббота": 5, "субботы": 5, "субботу": 5,
	"вс": 6, "вск": 6, "вос": 6, "воскр": 6, "воскресенье": 6, "воскресенья": 6,
}

// ignoredWords carry no meaning of their own in hours: «с 9 до 18», «пн. и ср.», «часов».
var ignoredWords = map[string]bool{"с": true, "и": true, "ч": true, "час": true, "часов": true, "режим": true, "работы": true, "время": true, "по": true}

// lexHours cuts the text into tokens: days and day ranges, times and time ranges, keywords.
func lexHours(s string) ([]hoursTok, error) {
	var toks []hoursTok
	lower := strings.ToLower(s)
	i := 0
	bad := func(what string) error {
		return fmt.Errorf("%w: %q: cannot read %q", ErrHours, s, what)
	}
	// pendingDash: a dash after a day or a time waits for the other end of its range.
	for i < len(lower) {
		r, size := utf8.DecodeRuneInString(lower[i:])
		switch {
		case unicode.IsSpace(r) || r == ':' || r == '.' || r == '(' || r == ')':
			i += size
		case r == ',' || r == ';' || r == '\n' || r == '/':
			toks = append(toks, hoursTok{kind: tokSep})
			i += size
		case isDash(r):
			// A dash that is not inside a range: «вых. — вс», «пн-пт — 9-18».
			i += size
		case r >= '0' && r <= '9':
			from, n, ok := readClock(lower[i:])
			if !ok {
				return nil, bad(lower[i:min(len(lower), i+8)])
			}
			i += n
			j, ok := rangeSep(lower, i)
			if !ok {
				return nil, bad(lower[i-n : min(len(lower), i+8)])
			}
			to, n2, ok := readClock(lower[j:])
			if !ok {
				return nil, bad(lower[i-n : min(len(lower), j+8)])
			}
			i = j + n2
			if from == to {
				return nil, bad(clock(from) + "–" + clock(to))
			}
			toks = append(toks, hoursTok{kind: tokSpan, span: span{from, to}})
		case unicode.IsLetter(r):
			w, n := readWord(lower[i:])
			i += n
			if d, ok := dayWords[w]; ok {
				mask := uint8(1) << d
				if j, ok := rangeSep(lower, i); ok {
					w2, n2 := readWord(lower[j:])
					if d2, ok := dayWords[w2]; ok && n2 > 0 {
						i = j + n2
						mask = 0
						for k := d; ; k = (k + 1) % 7 {
							mask |= 1 << k
							if k == d2 {
								break
							}
						}
					}
				}
				toks = append(toks, hoursTok{kind: tokDays, days: mask})
				continue
			}
			switch {
			case w == "ежедневно" || w == "ежедн" || w == "каждый" && strings.HasPrefix(strings.TrimSpace(lower[i:]), "день"):
				if w == "каждый" {
					_, n := readWord(strings.TrimLeft(lower[i:], " "))
					i += len(lower[i:]) - len(strings.TrimLeft(lower[i:], " ")) + n
				}
				toks = append(toks, hoursTok{kind: tokEveryDay})
			case w == "круглосуточно" || w == "24/7" || w == "круглосуточный":
				toks = append(toks, hoursTok{kind: tokRoundClock})
			case w == "будни" || w == "будние" || w == "будням" || w == "рабочие":
				if w == "будние" || w == "рабочие" {
					i = skipWord(lower, i, "дни")
				}
				toks = append(toks, hoursTok{kind: tokDays, days: 0x1f})
			case w == "обед" || w == "перерыв":
				if strings.HasPrefix(strings.TrimLeft(lower[i:], " "), "на обед") {
					i = skipWord(lower, skipWord(lower, i, "на"), "обед")
				}
				toks = append(toks, hoursTok{kind: tokBreak})
			case w == "без":
				w2, n2 := readWord(strings.TrimLeft(lower[i:], " "))
				skip := len(lower[i:]) - len(strings.TrimLeft(lower[i:], " ")) + n2
				switch w2 {
				case "обеда", "перерыва":
					i += skip
					toks = append(toks, hoursTok{kind: tokNoBreak})
				case "выходных":
					i += skip
					toks = append(toks, hoursTok{kind: tokEveryDay})
				default:
					return nil, bad("без " + w2)
				}
			case w == "выходные" || w == "выходной" || w == "вых" || w == "выходн" || w == "выходных":
				if w == "выходные" && nextIsTime(lower, i) {
					toks = append(toks, hoursTok{kind: tokDays, days: 0x60})
				} else {
					if w == "выходные" || w == "выходной" {
						i = skipWord(lower, i, "дни")
						i = skipWord(lower, i, "день")
					}
					toks = append(toks, hoursTok{kind: tokDayOff})
				}
			case w == "до" || ignoredWords[w]:
			default:
				return nil, bad(w)
			}
		default:
			return nil, bad(string(r))
		}
	}
	return toks, nil
}

// readWord reads a run of letters.
func readWord(s string) (string, int) {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !unicode.IsLetter(r) {
			break
		}
		n += size
	}
	return s[:n], n
}

// skipWord skips blanks and the word w at s[i:] when it is there.
func skipWord(s string, i int, w string) int {
	j := i
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if got, n := readWord(s[j:]); got == w {
		return j + n
	}
	return i
}

// nextIsTime reports whether the next thing after s[i:] (past blanks and colons) is a digit.
func nextIsTime(s string, i int) bool {
	t := strings.TrimLeftFunc(s[i:], func(r rune) bool {
		return r == ' ' || r == ':' || r == '.' || r == ',' || r == 's' || isDash(r) || r == 'с'
	})
	return t != "" && t[0] >= '0' && t[0] <= '9'
}

func isDash(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212':
		return true
	}
	return false
}

// rangeSep finds the separator of a range at s[i:] — a dash of any kind or «до», with blanks and
// a dot («Пн.-Чт.») around it — and returns where the range's other end starts.
func rangeSep(s string, i int) (int, bool) {
	j := i
	skip := func() {
		for j < len(s) && (s[j] == ' ' || s[j] == '.' || s[j] == '\t') {
			j++
		}
	}
	skip()
	if j >= len(s) {
		return 0, false
	}
	r, size := utf8.DecodeRuneInString(s[j:])
	switch {
	case isDash(r):
		j += size
	case strings.HasPrefix(s[j:], "до ") || strings.HasPrefix(s[j:], "по "):
		j += len("до")
	default:
		return 0, false
	}
	skip()
	return j, j < len(s)
}

// readClock reads «9», «09:00», «9.00», «16.45», «9ч» as minutes since midnight; 24:00 is the end
// of the day.
func readClock(s string) (int, int, bool) {
	n := 0
	h := 0
	for n < len(s) && n < 2 && s[n] >= '0' && s[n] <= '9' {
		h = h*10 + int(s[n]-'0')
		n++
	}
	if n == 0 || (n < len(s) && s[n] >= '0' && s[n] <= '9') {
		return 0, 0, false
	}
	m := 0
	if n+3 <= len(s) && (s[n] == ':' || s[n] == '.') && isDigit(s[n+1]) && isDigit(s[n+2]) && (n+3 == len(s) || !isDigit(s[n+3])) {
		m = int(s[n+1]-'0')*10 + int(s[n+2]-'0')
		n += 3
	}
	if h > 24 || m > 59 || h == 24 && m != 0 {
		return 0, 0, false
	}
	return h*60 + m, n, true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
