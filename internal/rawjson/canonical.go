package rawjson

import (
	"bytes"
	"slices"
	"sync"
)

// canonicalizer writes the canonical form of JSON bytes. Objects are written member by member as
// they come and then put in key order in place, so nothing is decoded into Go values.
type canonicalizer struct {
	src     []byte
	out     []byte
	members []member // members of the objects being written, innermost last
	keys    []byte   // decoded keys that differ from their bytes
	scratch []byte
}

// member is one written object member: out[start:end] is `"key":value`; key is the decoded key.
type member struct {
	key        []byte
	start, end int
}

var canonicalizers = sync.Pool{New: func() any { return new(canonicalizer) }}

// AppendCanonical appends the canonical form of the first JSON value of src to dst: object keys
// sorted (bytewise, as decoded; of a repeated key the last value counts), no insignificant
// whitespace, numbers as written, strings written as AppendString writes their value. What follows
// the value is ignored, as one json.Decoder.Decode ignores it. It is the bytes encoding/json gives
// when it decodes src into an any with UseNumber and encodes that with HTML escaping off.
func AppendCanonical(dst, src []byte) ([]byte, error) {
	c := canonicalizers.Get().(*canonicalizer)
	defer func() {
		c.src, c.out = nil, nil
		clear(c.members[:cap(c.members)]) // their keys may point into src
		c.members, c.keys = c.members[:0], c.keys[:0]
		canonicalizers.Put(c)
	}()
	c.src, c.out = src, dst
	i := SkipSpace(src, 0)
	if _, ok := c.value(i, 0); !ok {
		return dst, ErrSyntax
	}
	return c.out, nil
}

func (c *canonicalizer) value(i, depth int) (int, bool) {
	b := c.src
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, flags, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		c.appendString(b[i:end], flags)
		return end, true
	case '{':
		return c.object(i, depth+1)
	case '[':
		if depth++; depth > maxDepth {
			return 0, false
		}
		c.out = append(c.out, '[')
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			c.out = append(c.out, ']')
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = c.value(i, depth); !ok {
				return 0, false
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				c.out = append(c.out, ',')
				i = SkipSpace(b, i+1)
			case ']':
				c.out = append(c.out, ']')
				return i + 1, true
			default:
				return 0, false
			}
		}
	default:
		end, ok := skipScalar(b, i)
		if ok {
			c.out = append(c.out, b[i:end]...)
		}
		return end, ok
	}
}

// skipScalar checks a number or literal at b[i].
func skipScalar(b []byte, i int) (int, bool) {
	switch b[i] {
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

// appendString writes the string literal lit as its decoded value encodes.
func (c *canonicalizer) appendString(lit []byte, flags int) {
	switch {
	case flags == 0:
		c.out = append(c.out, lit...)
	case flags&escaped == 0:
		c.out = AppendString(c.out, lit[1:len(lit)-1])
	default:
		c.scratch = appendUnquoted(c.scratch[:0], lit[1:len(lit)-1])
		c.out = AppendString(c.out, c.scratch)
	}
}

func (c *canonicalizer) object(i, depth int) (int, bool) {
	if depth > maxDepth {
		return 0, false
	}
	b := c.src
	open := len(c.out)
	c.out = append(c.out, '{')
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		c.out = append(c.out, '}')
		return i + 1, true
	}
	base := len(c.members)
	defer func() { c.members = c.members[:base] }()
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, flags, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		m := member{start: len(c.out)}
		if flags&escaped == 0 {
			m.key = b[i+1 : end-1]
		} else {
			k := len(c.keys)
			c.keys = appendUnquoted(c.keys, b[i+1:end-1])
			m.key = c.keys[k:len(c.keys):len(c.keys)]
		}
		c.appendString(b[i:end], flags)
		i = SkipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		c.out = append(c.out, ':')
		if i, ok = c.value(SkipSpace(b, i+1), depth); !ok {
			return 0, false
		}
		m.end = len(c.out)
		c.members = append(c.members, m)
		i = SkipSpace(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			c.out = append(c.out, ',')
			i = SkipSpace(b, i+1)
		case '}':
			c.sortMembers(open, c.members[base:])
			c.out = append(c.out, '}')
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// sortMembers rewrites the members of the object opened at out[open] in key order, keeping the
// last of a repeated key, unless they are in order already.
func (c *canonicalizer) sortMembers(open int, ms []member) {
	sorted := true
	for k := 1; k < len(ms); k++ {
		if bytes.Compare(ms[k-1].key, ms[k].key) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return
	}
	slices.SortStableFunc(ms, func(x, y member) int { return bytes.Compare(x.key, y.key) })
	c.scratch = append(c.scratch[:0], c.out[open+1:]...)
	shift := open + 1
	c.out = c.out[:open+1]
	first := true
	for k, m := range ms {
		if k+1 < len(ms) && bytes.Equal(m.key, ms[k+1].key) {
			continue // a later value of the same key wins
		}
		if !first {
			c.out = append(c.out, ',')
		}
		first = false
		c.out = append(c.out, c.scratch[m.start-shift:m.end-shift]...)
	}
}
