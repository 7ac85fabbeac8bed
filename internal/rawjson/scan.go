package rawjson

import (
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
	i++
	for i < len(b) {
		c := b[i]
		if plainASCII[c] {
			i++
			continue
		}
		// Two-byte UTF-8 (Cyrillic, most of the hub's text) is checked here rather than decoded.
		if 0xC2 <= c && c <= 0xDF && i+1 < len(b) && b[i+1]&0xC0 == 0x80 {
			i += 2
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
func Skip(b []byte, i int) (end int, ok bool) { return skip(b, i, 0) }

func skip(b []byte, i, depth int) (int, bool) {
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
		i = SkipSpace(b, i+1)
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
			i = SkipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			if i, ok = skip(b, SkipSpace(b, i+1), depth); !ok {
				return 0, false
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = SkipSpace(b, i+1)
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
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skip(b, i, depth); !ok {
				return 0, false
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = SkipSpace(b, i+1)
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case 't':
		return scanLiteral(b, i, "true")
	case 'f':
		return scanLiteral(b, i, "false")
	case 'n':
		return scanLiteral(b, i, "null")
	default:
		return scanNumber(b, i)
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
