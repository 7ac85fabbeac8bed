package catalog

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"

	"socialhub/internal/rawjson"
)

// The catalog's canonical JSON is what encoding/json writes with HTML escaping off: object keys
// sorted, no spaces. The content hash of every stored doc is over these bytes, so they must not
// change. appendJSON writes them without reflection for the values JSON decoding into any yields
// (objects, arrays, strings, float64, bool, null), which is all a canonical doc holds; anything
// else goes through encoding/json itself. TestAppendJSON and FuzzAppendJSON hold the two equal.

// marshal encodes v with sorted object keys and without HTML escaping (the catalog is read by people).
func marshal(v any) ([]byte, error) {
	bp := encBuffers.Get().(*[]byte)
	b, err := appendJSON((*bp)[:0], v)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(b)
	if cap(b) <= maxPooledBuffer {
		*bp = b
		encBuffers.Put(bp)
	}
	return out, nil
}

// maxPooledBuffer bounds the buffers kept for reuse, so that one huge doc does not stay in memory.
const maxPooledBuffer = 64 << 10

var encBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// appendJSON appends the canonical JSON of v to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return rawjson.AppendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return appendJSONReflect(dst, v) // encoding/json's error
		}
		return appendJSONFloat(dst, x), nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		var arr [32]string
		keys := arr[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = rawjson.AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendJSON(dst, x[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSON(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendJSONReflect(dst, v)
}

// appendJSONReflect encodes v with encoding/json, as the catalog always did.
func appendJSONReflect(dst []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

// appendJSONFloat writes a float64 as encoding/json does (ES6 number formatting).
func appendJSONFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(dst) - start; n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}
