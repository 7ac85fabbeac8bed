package rawjson

import (
	"encoding/json"
	"sync"
)

// decoder decodes into any. Members and elements gather on shared stacks so every map and slice
// is made once at its final size.
type decoder struct {
	src   []byte
	str   string // src as a string: literals without escapes are substrings of it
	kvs   []keyValue
	elems []any
}

type keyValue struct {
	key   string
	value any
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// Decode decodes src, one JSON value with nothing but whitespace around it, as json.Unmarshal
// decodes into an any with UseNumber: objects as map[string]any (of a repeated key the last value
// counts), arrays as []any, numbers as json.Number, strings with invalid UTF-8 as U+FFFD. The
// strings share one copy of src. Invalid input is ErrSyntax.
func Decode(src []byte) (any, error) {
	d := decoders.Get().(*decoder)
	defer func() {
		d.src, d.str = nil, ""
		decoders.Put(d)
	}()
	d.src, d.str = src, string(src)
	v, end, ok := d.value(SkipSpace(src, 0), 0)
	if !ok || SkipSpace(src, end) != len(src) {
		// The stacks may hold what the failed value had read so far.
		clear(d.kvs[:cap(d.kvs)])
		clear(d.elems[:cap(d.elems)])
		d.kvs, d.elems = d.kvs[:0], d.elems[:0]
		return nil, ErrSyntax
	}
	return v, nil
}

func (d *decoder) value(i, depth int) (any, int, bool) {
	b := d.src
	if i >= len(b) {
		return nil, 0, false
	}
	switch b[i] {
	case '"':
		end, flags, ok := scanString(b, i)
		if !ok {
			return nil, 0, false
		}
		return d.string(i, end, flags), end, true
	case '{':
		return d.object(i, depth+1)
	case '[':
		return d.array(i, depth+1)
	case 't':
		end, ok := scanLiteral(b, i, "true")
		return true, end, ok
	case 'f':
		end, ok := scanLiteral(b, i, "false")
		return false, end, ok
	case 'n':
		end, ok := scanLiteral(b, i, "null")
		return nil, end, ok
	default:
		end, ok := scanNumber(b, i)
		if !ok {
			return nil, 0, false
		}
		return json.Number(d.str[i:end]), end, true
	}
}

// string returns the value of the string literal src[i:end].
func (d *decoder) string(i, end, flags int) string {
	if flags&escaped == 0 {
		return d.str[i+1 : end-1]
	}
	return Unquote(d.src[i:end])
}

func (d *decoder) object(i, depth int) (any, int, bool) {
	if depth > maxDepth {
		return nil, 0, false
	}
	b := d.src
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return make(map[string]any), i + 1, true
	}
	base := len(d.kvs)
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, 0, false
		}
		end, flags, ok := scanString(b, i)
		if !ok {
			return nil, 0, false
		}
		key := d.string(i, end, flags)
		i = SkipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, 0, false
		}
		var v any
		if v, i, ok = d.value(SkipSpace(b, i+1), depth); !ok {
			return nil, 0, false
		}
		d.kvs = append(d.kvs, keyValue{key, v})
		i = SkipSpace(b, i)
		if i >= len(b) {
			return nil, 0, false
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			kvs := d.kvs[base:]
			m := make(map[string]any, len(kvs))
			for _, kv := range kvs {
				m[kv.key] = kv.value
			}
			clear(kvs)
			d.kvs = d.kvs[:base]
			return m, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

func (d *decoder) array(i, depth int) (any, int, bool) {
	if depth > maxDepth {
		return nil, 0, false
	}
	b := d.src
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return make([]any, 0), i + 1, true
	}
	base := len(d.elems)
	for {
		v, end, ok := d.value(i, depth)
		if !ok {
			return nil, 0, false
		}
		d.elems = append(d.elems, v)
		i = SkipSpace(b, end)
		if i >= len(b) {
			return nil, 0, false
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			elems := d.elems[base:]
			a := make([]any, len(elems))
			copy(a, elems)
			clear(elems)
			d.elems = d.elems[:base]
			return a, i + 1, true
		default:
			return nil, 0, false
		}
	}
}
