package event_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/event"
)

// The envelope codec and the canonical form as they were written on encoding/json. Stored content
// hashes were taken with these, and every stage reads envelopes other versions wrote: the new code
// must give the same bytes, the same events and the same errors for every input.

func oldContentHash(data []byte) (string, error) {
	canon, err := oldCanonical(data)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

func oldCanonical(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("error decoding JSON for canonical form: %w", err)
	}
	var buf bytes.Buffer
	if err := oldWriteCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func oldWriteCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := oldWriteString(buf, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := oldWriteCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := oldWriteCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case string:
		return oldWriteString(buf, x)
	case json.Number:
		buf.WriteString(x.String())
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("unexpected JSON value of type %T", v)
	}
	return nil
}

func oldWriteString(buf *bytes.Buffer, s string) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	return nil
}

// documents are JSON texts, valid and not, that reach every corner of the canonical form.
var documents = []string{
	`{"a":1,"b":[1,2]}`, `"строка"`, `{"z":1.50,"a":[true,null,"Семья <и> дети"]}`,
	"{ \"a\" : {\"x\":\"<&>\", \"y\":[1, 2, {\"k\":\"в\"}]},\n \"b\": 1 }",
	`{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `{"\"":1,"!":2,"#":3}`, `{"\n":1,"\u0001":2," ":3}`,
	`{"é":1,"e":2,"\u00e9":4}`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`, `"a\u2028b\u2029"`,
	"\"a\u2028b\"", "\"\xff\xfe\"", "{\"\xff\":\"\xc3\"}", `"\/\b\f\n\r\t\\\""`, `"\u0000\u001f"`,
	`0`, `-0`, `1e5`, `-1.25e-7`, `01`, `1.`, `-`, `true`, `truex`, `1x`, `{}x`, `{} {}`, ``, ` `, `{`,
	`{"a":1,}`, `[1,]`, `{"a":1 "b":2}`, `{"a":[{"c":1,"b":2},{"e":[3,{"g":1,"f":0}]}],"0":null}`,
	`{"id":"7f3a","address":{"address_1":"ул. Братиславская, д. 14, кв. 25","city":"Москва","okrug":"ЮВАО"},"pensioner":true}`,
}

// randomDocument builds a JSON text from pieces that need care: escapes, non-ASCII, separators,
// invalid UTF-8, repeated keys, numbers as written, whitespace.
func randomDocument(r *rand.Rand, depth int) string {
	pieces := []string{"a", "b", "ключ", `\u00e9`, "é", `\n`, `\"`, "\xff", "\u2028", `\ud83d`, `\ude00`, "<&>", " ", `\u0061`}
	str := func() string {
		var b strings.Builder
		b.WriteByte('"')
		for range r.IntN(4) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		b.WriteByte('"')
		return b.String()
	}
	ws := func() string { return []string{"", "", " ", "\n\t"}[r.IntN(4)] }
	switch k := r.IntN(8); {
	case depth < 4 && k < 2:
		var b strings.Builder
		b.WriteString("{" + ws())
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteString("," + ws())
			}
			b.WriteString(str() + ws() + ":" + ws() + randomDocument(r, depth+1))
		}
		return b.String() + ws() + "}"
	case depth < 4 && k < 4:
		var b strings.Builder
		b.WriteString("[" + ws())
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteString("," + ws())
			}
			b.WriteString(randomDocument(r, depth+1))
		}
		return b.String() + ws() + "]"
	case k < 6:
		return str()
	case k < 7:
		return []string{"0", "-1", "1.50", "2e10", "-0.0e-0", "12345678901234567890"}[r.IntN(6)]
	default:
		return []string{"true", "false", "null"}[r.IntN(3)]
	}
}

// mutated breaks or bends a text: a byte changed, dropped or doubled, or something appended.
func mutated(r *rand.Rand, s string) string {
	if s == "" {
		return "x"
	}
	i := r.IntN(len(s))
	switch r.IntN(4) {
	case 0:
		return s[:i] + string(`{}[]",:\ 0aeu-.`[r.IntN(15)]) + s[i+1:]
	case 1:
		return s[:i] + s[i+1:]
	case 2:
		return s[:i+1] + s[i:]
	default:
		return s + []string{" 1", "x", "}", " {}", "\n"}[r.IntN(5)]
	}
}

func requireSameCanonical(t *testing.T, in []byte) {
	want, wantErr := oldCanonical(in)
	got, err := event.Canonical(in)
	if wantErr != nil {
		require.EqualError(t, err, wantErr.Error(), "%q", in)
	} else {
		require.NoError(t, err, "%q", in)
		require.Equal(t, string(want), string(got), "%q", in)
	}
	wantHash, wantErr := oldContentHash(in)
	gotHash, err := event.ContentHash(in)
	if wantErr != nil {
		require.EqualError(t, err, wantErr.Error(), "%q", in)
		return
	}
	require.NoError(t, err, "%q", in)
	require.Equal(t, wantHash, gotHash, "%q", in)
}

func TestCanonicalMatchesOldImplementation(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	inputs := append([]string(nil), documents...)
	for range 3000 {
		d := randomDocument(r, 0)
		inputs = append(inputs, d, mutated(r, d))
	}
	for _, in := range inputs {
		requireSameCanonical(t, []byte(in))
	}
}

func FuzzCanonicalMatchesOldImplementation(f *testing.F) {
	for _, d := range documents {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, in []byte) { requireSameCanonical(t, in) })
}

// envelopes are event texts that reach every path of the envelope decoder: what the hub writes,
// keys in other case or escaped, nulls and wrong types, repeated and unknown fields, odd times,
// broken JSON.
var envelopes = []string{
	`{"specversion":"1.0","id":"1","source":"socialhub/x","type":"socialhub.raw.service.upsert","subject":"a","time":"2025-06-01T12:00:00Z","data":{"name":"Комната прохлады"}}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2025-06-01T15:00:00.123456789+03:00","data":[1, 2 ,{"b" : 1}]}`,
	` { "specversion" : "1.0" , "id" : "1" , "source" : "s" , "type" : "t" , "data" : null } `,
	`{"SpecVersion":"1.0","ID":"1","source":"s","type":"t"}`, `{"specversion":"1.0","\u0069d":"1","source":"s","type":"t"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","subject":"a\"b\u00e9\ud83d"}`,
	`{"specversion":"1.0","id":null,"source":"s","type":"t"}`, `{"specversion":"1.0","id":7,"source":"s","type":"t"}`,
	`{"specversion":"1.0","id":"1","id":"2","source":"s","type":"t","extra":{"x":[1]}}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","time":null}`, `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2025-06-01T12:00:00\u005a"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2025-06-01 12:00:00Z"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","data":"x","data":{"y":1}}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":}}`, `{"specversion":"1.0","id":"1"} x`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t"}}`, `[]`, `"x"`, `null`, ``, `{}`, `{"specversion":`,
	"{\"id\":\"\xff\"}", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, `{"specversion":"1.0","source":"s"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","contenthash":"ab","entitytype":"resident","op":"upsert","dataschema":"d"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","ſubject":"kelvin","Op":"x"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","id":"\u0032","op":"x","op":"upsert","entitytype":"service","entitytype":"y"}`,
	`{"specversion":"1.0","id":"\u0031","source":"s","type":"t","id":"2","subject":"","subject":"a"}`,
	`{"specversion":"1.0","source":"s","type":"t"` + strings.Repeat(`,"id":"x","subject":"y"`, 12) + `}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"x":1},"op":}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"x":1},"op":7}`,
	`{"data":[1],"data":{"x":"second"},"specversion":"1.0","id":"1","source":"s","type":"t"}`,
}

func requireSameUnmarshal(t *testing.T, in []byte, start event.Event) {
	want, got := start, start
	want.Data = append(make([]byte, 0, cap(start.Data)), start.Data...)
	got.Data = append(make([]byte, 0, cap(start.Data)), start.Data...)
	wantArray, gotArray := want.Data[:cap(want.Data)], got.Data[:cap(got.Data)]
	wantErr := event.UnmarshalWithEncodingJSON(in, &want)
	err := event.Unmarshal(in, &got)
	require.Equal(t, string(wantArray), string(gotArray), "%q: the array of Data", in)
	if wantErr != nil {
		require.EqualError(t, err, wantErr.Error(), "%q", in)
	} else {
		require.NoError(t, err, "%q", in)
	}
	require.Equal(t, want, got, "%q", in)
}

func randomEvent(r *rand.Rand) event.Event {
	texts := []string{"", "1.0", "socialhub/dszn", "DSZN-1", "Семья <и> дети", "q\"b\\s", "\x01\n", "\xff", "\u2028"}
	text := func() string { return texts[r.IntN(len(texts))] }
	times := []time.Time{
		{}, time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC),
		time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("MSK", 3*3600)),
		time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("odd", -(9*3600+30*60+15))),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
	}
	e := event.Event{
		SpecVersion: text(), ID: text(), Source: text(), Type: text(), Subject: text(), Time: times[r.IntN(len(times))],
		DataSchema: text(), ContentType: text(), ContentHash: text(), EntityType: text(), Op: text(),
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		e.Data = []byte(randomDocument(r, 0))
	default:
		e.Data = []byte(mutated(r, randomDocument(r, 0)))
	}
	return e
}

func TestEnvelopeCodecMatchesOldImplementation(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	// Data with room to spare: a decoder that wrote into it before failing would show.
	prefilled := event.Event{ID: "earlier", Subject: "kept", Data: append(make([]byte, 0, 256), `{"earlier":true}`...)}
	for _, in := range envelopes {
		requireSameUnmarshal(t, []byte(in), event.Event{})
		requireSameUnmarshal(t, []byte(in), prefilled)
	}
	for range 3000 {
		e := randomEvent(r)
		want, got := e, e
		wantBytes, wantErr := event.MarshalWithEncodingJSON(&want)
		gotBytes, err := event.Marshal(&got)
		if wantErr != nil {
			require.EqualError(t, err, wantErr.Error(), "%+v", e)
			continue
		}
		require.NoError(t, err, "%+v", e)
		require.Equal(t, string(wantBytes), string(gotBytes), "%+v", e)
		require.Equal(t, want, got)
		requireSameUnmarshal(t, gotBytes, event.Event{})
		requireSameUnmarshal(t, []byte(mutated(r, string(gotBytes))), event.Event{})
		requireSameUnmarshal(t, []byte(mutated(r, string(gotBytes))), prefilled)
	}
}

func FuzzUnmarshalMatchesOldImplementation(f *testing.F) {
	for _, in := range envelopes {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { requireSameUnmarshal(t, in, event.Event{}) })
}
