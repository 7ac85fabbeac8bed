package rawjson

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxDepth is encoding/json's limit of nested objects and arrays.
const maxDepth = 10000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// String flags.
const (
	// escaped: the literal holds a backslash escape or invalid UTF-8, so its value differs from
	// its bytes.
	escaped = 1 << iota
	// separator: the literal holds U+2028 or U+2029, which encoding/json writes escaped.
	separator
)

// scanString checks the string literal starting at b[i] == '"' and returns the index after its
// closing quote and its flags; ok is false when it is not a valid literal.
func scanString(b []byte, i int) (end int, flags int, ok bool) {
	// Eight plain ASCII bytes at a time first: keys, ids, dates and hashes are mostly that.
	for i++; i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])); i += 8 {
	}
	for i < len(b) {
		c := b[i]
		if plainASCII[c] {
			i++
			continue
		}
		// Two-byte UTF-8 (Cyrillic, most of the hub's text) is checked here rather than decoded,
		// and then four characters at a time.
		if 0xC2 <= c && c <= 0xDF && i+1 < len(b) && b[i+1]&0xC0 == 0x80 {
			for i += 2; i+8 <= len(b) && twoByteWord(binary.LittleEndian.Uint64(b[i:])); i += 8 {
			}
			continue
		}
		switch {
		case c == '"':
			return i + 1, flags, true
		case c == '\\':
			flags |= escaped
			i++
			if i >= len(b) {
				return 0, 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return 0, 0, false
				}
				i += 5
			default:
				return 0, 0, false
			}
		case c < ' ':
			return 0, 0, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				flags |= escaped
			} else if r == '\u2028' || r == '\u2029' {
				flags |= separator
			}
			i += size
		}
	}
	return 0, 0, false
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether none of the eight bytes of x is a control character, '"', '\\' or
// above ASCII: the classic tests for "a byte less than n" and "a zero byte" (here of x with '"'
// or '\\' xored out), on all eight bytes at once.
func plainWord(x uint64) bool {
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return (x|(x-ones*' ')&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs == 0
}

// twoByteWord reports whether the eight bytes of x are four two-byte UTF-8 characters: each pair a
// lead byte 0xC2–0xDF and a continuation byte 0x80–0xBF.
func twoByteWord(x uint64) bool {
	const (
		leadTop  = 0x00E000E000E000E0 // the top three bits of the lead bytes: 110
		leadLow  = 0x001E001E001E001E // not all zero, or the lead is the overlong 0xC0 or 0xC1
		contTop  = 0xC000C000C000C000 // the top two bits of the continuation bytes: 10
		laneHigh = 0x8000800080008000
	)
	return x&leadTop == 0x00C000C000C000C0 && x&contTop == laneHigh &&
		((x&leadLow)+0x7FFF7FFF7FFF7FFF)&laneHigh == laneHigh
}

// plainASCII marks the bytes that stand for themselves inside a string literal.
var plainASCII = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber checks the number literal starting at b[i] and returns the index after it.
func scanNumber[S []byte | string](b S, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, true
}

// scanLiteral checks that b[i:] starts with lit and returns the index after it.
func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// String checks the string literal starting at b[i] == '"' and returns the index after its closing
// quote; plain says its value is its bytes (no escapes, valid UTF-8), so b[i+1:end-1] is the value
// and Unquote is not needed.
func String(b []byte, i int) (end int, plain bool, ok bool) {
	end, flags, ok := scanString(b, i)
	return end, flags&escaped == 0, ok
}

// Skip checks the JSON value starting at b[i] (no whitespace before it) and returns the index
// after it; ok is false when there is no valid value there.
func Skip(b []byte, i int) (end int, ok bool) {
	s := skipper{b: b}
	return s.value(i, 0)
}

// skipper checks values; compacting, it also copies what it checked to out without whitespace.
type skipper struct {
	b        []byte
	compact  bool
	out      []byte
	copiedTo int // b[:copiedTo] is in out or dropped
}

// space skips whitespace at b[i:]; compacting, it copies what came before the whitespace.
func (s *skipper) space(i int) int {
	j := SkipSpace(s.b, i)
	if s.compact && j > i {
		s.out = append(s.out, s.b[s.copiedTo:i]...)
		s.copiedTo = j
	}
	return j
}

func (s *skipper) value(i, depth int) (int, bool) {
	b := s.b
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case '{':
		if depth++; depth > maxDepth {
			return 0, false
		}
		i = s.space(i + 1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, false
			}
			var ok bool
			if i, _, ok = scanString(b, i); !ok {
				return 0, false
			}
			i = s.space(i)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			if i, ok = s.value(s.space(i+1), depth); !ok {
				return 0, false
			}
			i = s.space(i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = s.space(i + 1)
			case '}':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case '[':
		if depth++; depth > maxDepth {
			return 0, false
		}
		i = s.space(i + 1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = s.value(i, depth); !ok {
				return 0, false
			}
			i = s.space(i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = s.space(i + 1)
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	default:
		return skipScalar(b, i)
	}
}

// Valid reports whether b is one JSON value, with nothing but whitespace around it, as
// json.Valid does.
func Valid(b []byte) bool {
	end, ok := Skip(b, SkipSpace(b, 0))
	return ok && SkipSpace(b, end) == len(b)
}

// Unquote returns the value of the valid string literal lit, quotes included, as encoding/json
// decodes it: escapes resolved, invalid UTF-8 and lone surrogates as U+FFFD.
func Unquote(lit []byte) string {
	return string(appendUnquoted(nil, lit[1:len(lit)-1]))
}

// appendUnquoted appends the value of s, the inside of a valid string literal, as encoding/json's
// unquoteBytes decodes it.
func appendUnquoted(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			r++
			switch s[r] {
			case 'b':
				dst = append(dst, '\b')
				r++
			case 'f':
				dst = append(dst, '\f')
				r++
			case 'n':
				dst = append(dst, '\n')
				r++
			case 'r':
				dst = append(dst, '\r')
				r++
			case 't':
				dst = append(dst, '\t')
				r++
			case 'u':
				rr := getu4(s[r-1:])
				r += 5
				if isSurrogate(rr) {
					if rr1 := getu4(s[r:]); rr1 >= 0 {
						if dec := decodeSurrogates(rr, rr1); dec != utf8.RuneError {
							r += 6
							dst = utf8.AppendRune(dst, dec)
							break
						}
					}
					rr = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, rr)
			default: // '"', '\\', '/'
				dst = append(dst, s[r])
				r++
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			dst = utf8.AppendRune(dst, rr)
		}
	}
	return dst
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

func isSurrogate(r rune) bool { return 0xd800 <= r && r < 0xe000 }

// decodeSurrogates is utf16.DecodeRune: the rune of a surrogate pair, or U+FFFD.
func decodeSurrogates(r1, r2 rune) rune {
	if 0xd800 <= r1 && r1 < 0xdc00 && 0xdc00 <= r2 && r2 < 0xe000 {
		return (r1-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal the way encoding/json writes it with HTML
// escaping off: '"', '\\' and control characters escaped, invalid UTF-8 as \ufffd, U+2028 and
// U+2029 escaped.
func AppendString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		c, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
