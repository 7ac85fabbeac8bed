package rawjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/rawjson"
)

// The reference implementations: what encoding/json does, which rawjson must match byte for byte.

func refDecode(src []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one value")
	}
	return v, nil
}

func refEncode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// refCanonical is event.Canonical as it was written on encoding/json: the first value, decoded
// and encoded with keys sorted.
func refCanonical(src []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return refEncode(v)
}

// seeds are inputs that reach every corner: escapes, invalid UTF-8, surrogates, separators,
// repeated and escaped keys, numbers, what follows the value, broken input.
var seeds = []string{
	`{"a":1,"b":[1,2]}`,
	`"строка"`,
	`{"z":1.50,"a":[true,null,"Семья <и> дети"]}`,
	`{"b":1,"a":{"y":[1,2,{"k":"в"}],"x":"<&>"}}`,
	"{ \"a\" : {\"x\":\"<&>\", \"y\":[1, 2, {\"k\":\"в\"}]},\n \"b\": 1 }",
	`{"a":1,"a":2}`, `{"a":1,"b":0,"a":{"c":3}}`, `{"\u0061":1,"a":2}`, `{"a":2,"\u0061":1}`,
	`{"\"":1,"!":2,"#":3}`, `{"\n":1,"\u0001":2," ":3}`, `{"é":1,"e":2,"z":3,"\u00e9":4}`,
	`"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`, `"a\u2028b\u2029"`,
	"\"a\u2028b\"", "\"\xff\xfe\"", "{\"\xff\":\"\xc3\"}", "\"\xed\xa0\x80\"", `"\/\b\f\n\r\t\\\""`,
	`"\u0000\u001f\u007f"`, `"\x"`, `"\u12"`, "\"\x01\"", `"abc`,
	`0`, `-0`, `1e5`, `1E+5`, `-1.25e-7`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `123456789012345678901234567890`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `true x`, `1x`, `1 x`, `"a"x`, `"a" x`, `{}x`, `[]x`,
	`{} {}`, `[1] 2`, ` {"a" : [ ] , "b" : { } } `, "\t\n\r 1 \t", ``, ` `, `{`, `[`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a":1 "b":2}`, `[1 2]`, `{1:2}`, `{"a":1}}`, `[[[]]]`,
	`{"a":[{"c":1,"b":2},{"e":[3,{"g":1,"f":0}]}],"0":null}`, "\ufeff{}", `[1,{"b":"\u00e9","a":"\u00c9"}]`,
}

func inputs(t *testing.T) [][]byte {
	t.Helper()
	out := make([][]byte, 0, len(seeds)+4000)
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		doc := randomJSON(r, 0)
		out = append(out, doc)
		out = append(out, mutate(r, doc))
	}
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	out = append(out, []byte(deep), []byte("["+deep+"]"), []byte(strings.Repeat(`{"a":`, 10001)+"1"+strings.Repeat("}", 10001)))
	return out
}

var pieces = []string{"a", "b", "ключ", "\\u00e9", "é", "\\n", "\\\"", "\xff", "\u2028", "\\ud83d", "\\ude00", "<&>", " ", "z", "\\u0061"}

func randomString(r *rand.Rand) string {
	var b strings.Builder
	b.WriteByte('"')
	for range r.IntN(4) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	b.WriteByte('"')
	return b.String()
}

var numbers = []string{"0", "-1", "1.50", "2e10", "-0.0e-0", "12345678901234567890", "3.14159"}

func randomJSON(r *rand.Rand, depth int) []byte {
	ws := func() string { return []string{"", "", " ", "\n\t"}[r.IntN(4)] }
	var b strings.Builder
	switch k := r.IntN(8); {
	case depth < 4 && k < 2:
		b.WriteString("{" + ws())
		n := r.IntN(5)
		for i := range n {
			if i > 0 {
				b.WriteString("," + ws())
			}
			b.WriteString(randomString(r) + ws() + ":" + ws())
			b.Write(randomJSON(r, depth+1))
		}
		b.WriteString(ws() + "}")
	case depth < 4 && k < 4:
		b.WriteString("[" + ws())
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteString("," + ws())
			}
			b.Write(randomJSON(r, depth+1))
		}
		b.WriteString(ws() + "]")
	case k < 6:
		b.WriteString(randomString(r))
	case k < 7:
		b.WriteString(numbers[r.IntN(len(numbers))])
	default:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	}
	return []byte(b.String())
}

// mutate breaks or bends a document: a byte changed, dropped or doubled, or something appended.
func mutate(r *rand.Rand, doc []byte) []byte {
	out := bytes.Clone(doc)
	if len(out) == 0 {
		return []byte("x")
	}
	i := r.IntN(len(out))
	switch r.IntN(4) {
	case 0:
		out[i] = `{}[]",:\ 0aeu-.`[r.IntN(15)]
	case 1:
		out = append(out[:i], out[i+1:]...)
	case 2:
		out = append(out[:i+1], out[i:]...)
	default:
		out = append(out, []string{" 1", "x", "}", " {}", "\n"}[r.IntN(5)]...)
	}
	return out
}

func checkCanonical(t *testing.T, in []byte) {
	want, wantErr := refCanonical(in)
	got, err := rawjson.AppendCanonical([]byte("prefix"), in)
	if wantErr != nil {
		require.Error(t, err, "%q: encoding/json says %v", in, wantErr)
		require.Equal(t, "prefix", string(got), "%q", in)
		return
	}
	require.NoError(t, err, "%q", in)
	require.Equal(t, "prefix"+string(want), string(got), "%q", in)
}

func checkDecode(t *testing.T, in []byte) {
	want, wantErr := refDecode(in)
	got, err := rawjson.Decode(in)
	if wantErr != nil {
		require.Error(t, err, "%q: encoding/json says %v", in, wantErr)
		return
	}
	require.NoError(t, err, "%q", in)
	require.Equal(t, want, got, "%q", in)
	wantBytes, err := refEncode(want)
	require.NoError(t, err)
	gotBytes, err := rawjson.AppendValue(nil, got)
	require.NoError(t, err)
	require.Equal(t, string(wantBytes), string(gotBytes), "%q", in)
}

func checkCompact(t *testing.T, in []byte) {
	var want bytes.Buffer
	wantErr := json.Compact(&want, in)
	got, err := rawjson.AppendCompact([]byte("p"), in)
	require.Equal(t, json.Valid(in), rawjson.Valid(in), "%q", in)
	if wantErr != nil {
		require.Error(t, err, "%q", in)
		return
	}
	require.NoError(t, err, "%q", in)
	require.Equal(t, "p"+want.String(), string(got), "%q", in)
}

func TestMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range inputs(t) {
		checkCanonical(t, in)
		checkDecode(t, in)
		checkCompact(t, in)
	}
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "Семья <и> дети", "q\"b\\s/", "\x00\x01\b\f\n\r\t\x1f\x7f", "\xff\xc3(", "\u2028\u2029", "😀"} {
		want, err := refEncode(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(rawjson.AppendString(nil, s)), "%q", s)
		require.Equal(t, string(want), string(rawjson.AppendString(nil, []byte(s))), "%q", s)
		var dec string
		require.NoError(t, json.Unmarshal(want, &dec))
		require.Equal(t, dec, rawjson.Unquote(want), "%q", s)
	}
}

// TestAppendValueChangedDocuments writes what code puts into decoded documents: new maps and
// slices, nil ones, numbers it makes, and types decoding never gives.
func TestAppendValueChangedDocuments(t *testing.T) {
	t.Parallel()
	for _, v := range []any{
		map[string]any{"b": json.Number("12"), "a": []any{map[string]any{}, []any{}}, "c": "x"},
		map[string]any{"nilmap": map[string]any(nil), "nilslice": []any(nil), "zero": json.Number("")},
		map[string]any{"f": 1.5, "i": 7, "s": []string{"пн", "вт"}, "m": map[string]string{"b": "1", "a": "<"}},
		[]any{nil, true, false, "\u2028", json.Number("-0.5e3")},
	} {
		want, err := refEncode(v)
		require.NoError(t, err)
		got, err := rawjson.AppendValue(nil, v)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
	_, err := refEncode(map[string]any{"n": json.Number("1x")})
	require.Error(t, err)
	_, err = rawjson.AppendValue(nil, map[string]any{"n": json.Number("1x")})
	require.ErrorIs(t, err, rawjson.ErrUnsupported)
}

func TestSkip(t *testing.T) {
	t.Parallel()
	in := []byte(`{"a":[1,"]",{"b":null}]} tail`)
	end, ok := rawjson.Skip(in, 0)
	require.True(t, ok)
	require.Equal(t, ` tail`, string(in[end:]))
	_, ok = rawjson.Skip([]byte(`{"a":[1}`), 0)
	require.False(t, ok)
}

func FuzzMatchesEncodingJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkCanonical(t, in)
		checkDecode(t, in)
		checkCompact(t, in)
	})
}
