package catalog

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// reflectJSON is the catalog's canonical JSON as encoding/json writes it: what appendJSON must
// reproduce byte for byte (content hashes stored by earlier versions depend on it).
func reflectJSON(t testing.TB, v any) ([]byte, error) {
	t.Helper()
	return appendJSONReflect(nil, v)
}

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	values := []any{
		nil, true, false, "", "plain", "«Моя работа» <b>&amp;</b>", "quote \" backslash \\ slash /",
		"\x00\x01\b\f\n\r\t\x1f\x7f", "bad utf-8: \xff\xfe \xc3", "separators \u2028 \u2029", "emoji 😀",
		0.0, math.Copysign(0, -1), 1.0, -1.5, 55.751244, 37.618423, 1e20, 1e21, 123456789e13, 1e-6, 1e-7,
		-2.5e-9, 5e-324, math.MaxFloat64, 1.0 / 3, float64(1 << 53),
		map[string]any{}, []any{}, map[string]any(nil), []any(nil),
		map[string]any{"b": 1.0, "a": []any{"x", nil, map[string]any{"z": true, "y": []any{}}}, "": "empty key",
			"ключ": "значение", "A": false, "a\u2028": "k", "\xff": "bad key"},
		[]any{map[string]any{"id": "1"}, []any{[]any{1.0}}, "s", 2.0},
		// values canonical docs never hold go through encoding/json
		[]string{"a", "b"}, map[string]string{"b": "1", "a": "2"}, 42, int64(-7), struct {
			X string `json:"x"`
		}{"y"}, []metadataEntry{{ID: "1", FieldName: "*"}},
	}
	for _, v := range values {
		want, err := reflectJSON(t, v)
		require.NoError(t, err)
		got, err := marshal(v)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%#v", v)
	}
	for _, v := range []any{math.NaN(), math.Inf(1), map[string]any{"x": []any{math.Inf(-1)}}} {
		_, err := marshal(v)
		require.Error(t, err)
	}
	// More keys than appendJSON sorts on its stack.
	big := map[string]any{}
	for i := range 100 {
		big[string(rune('a'+i%26))+string(rune('A'+i/26))] = float64(i)
	}
	want, err := reflectJSON(t, big)
	require.NoError(t, err)
	got, err := marshal(big)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x"]}`, `"\u2028\ud800"`, `[1e21,1e-7,-0,0.1]`, `{"":{"":[]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		want, err := reflectJSON(t, v)
		require.NoError(t, err)
		got, err := marshal(v)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		// Strings straight from the input, invalid UTF-8 included, as record fields may hold.
		s := string(data)
		want, err = reflectJSON(t, map[string]any{s: []any{s}})
		require.NoError(t, err)
		got, err = marshal(map[string]any{s: []any{s}})
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}

func TestAppendMetadata(t *testing.T) {
	t.Parallel()
	for _, m := range [][]metadataEntry{nil, {}, {{ID: "1", ResourceID: "r", ResourceType: "service", LastActionDate: "2026-01-01T00:00:00Z",
		LastActionType: "update", FieldName: "name,<b>", PreviousValue: "\"q\"\n", ReplacementValue: "\u2028", UpdatedBy: "src"}, {}}} {
		want, err := reflectJSON(t, m)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendMetadata(nil, m)))
	}
	doc, err := withMetadata([]byte(`{}`), []metadataEntry{{ID: "x"}})
	require.NoError(t, err)
	require.Equal(t, `{"metadata":[{"id":"x","resource_id":"","resource_type":"","last_action_date":"","last_action_type":"","field_name":"","previous_value":"","replacement_value":"","updated_by":""}]}`, string(doc))
}
