package rawjson

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// writer writes decoded documents; keys is a stack of the sorted keys of the maps being written.
type writer struct {
	keys []string
}

var writers = sync.Pool{New: func() any { return new(writer) }}

// AppendValue appends the canonical form of v, a document as Decode or json.Unmarshal into an any
// with UseNumber give it (and as code may have changed it since), to dst: what a json.Encoder with
// HTML escaping off writes for v, without the newline. Values of other types than decoding gives
// are written by encoding/json itself. An invalid json.Number is ErrUnsupported.
func AppendValue(dst []byte, v any) ([]byte, error) {
	w := writers.Get().(*writer)
	defer writers.Put(w)
	out, err := w.value(dst, v)
	clear(w.keys[:cap(w.keys)])
	w.keys = w.keys[:0]
	return out, err
}

func (w *writer) value(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return AppendString(dst, x), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case json.Number:
		if x == "" {
			return append(dst, '0'), nil // as encoding/json writes the zero Number
		}
		if end, ok := scanNumber(string(x), 0); !ok || end != len(x) {
			return dst, ErrUnsupported
		}
		return append(dst, x...), nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		base := len(w.keys)
		for k := range x {
			w.keys = append(w.keys, k)
		}
		keys := w.keys[base:]
		slices.SortFunc(keys, strings.Compare)
		dst = append(dst, '{')
		var err error
		for i := base; i < len(w.keys); i++ {
			if i > base {
				dst = append(dst, ',')
			}
			k := w.keys[i]
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			if dst, err = w.value(dst, x[k]); err != nil {
				return dst, err
			}
		}
		w.keys = w.keys[:base]
		return append(dst, '}'), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = w.value(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	default:
		buf := bytes.NewBuffer(dst)
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return dst, err
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
	}
}

// AppendCompact appends src, one JSON value with nothing but whitespace around it, to dst without
// insignificant whitespace, as json.Compact does. Invalid input is ErrSyntax.
func AppendCompact(dst, src []byte) ([]byte, error) {
	start := SkipSpace(src, 0)
	s := skipper{b: src, compact: true, out: dst, copiedTo: start}
	end, ok := s.value(start, 0)
	if !ok || SkipSpace(src, end) != len(src) {
		return dst, ErrSyntax
	}
	return append(s.out, src[s.copiedTo:end]...), nil
}
