package event_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/event"
)

func TestContentHashIgnoresKeyOrderAndSpacing(t *testing.T) {
	t.Parallel()
	a, err := event.ContentHash([]byte(`{"b":1,"a":{"y":[1,2,{"k":"в"}],"x":"<&>"}}`))
	require.NoError(t, err)
	b, err := event.ContentHash([]byte("{ \"a\" : {\"x\":\"<&>\", \"y\":[1, 2, {\"k\":\"в\"}]},\n \"b\": 1 }"))
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := event.ContentHash([]byte(`{"b":2,"a":{"y":[1,2,{"k":"в"}],"x":"<&>"}}`))
	require.NoError(t, err)
	require.NotEqual(t, a, c)
	// Array order is meaningful.
	d, err := event.ContentHash([]byte(`{"b":1,"a":{"y":[2,1,{"k":"в"}],"x":"<&>"}}`))
	require.NoError(t, err)
	require.NotEqual(t, a, d)
}

func TestCanonicalForm(t *testing.T) {
	t.Parallel()
	got, err := event.Canonical([]byte(`{"z":1.50,"a":[true,null,"Семья <и> дети"]}`))
	require.NoError(t, err)
	require.Equal(t, `{"a":[true,null,"Семья <и> дети"],"z":1.50}`, string(got))
	_, err = event.Canonical([]byte(`{"a":`))
	require.Error(t, err)
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	in := &event.Event{
		ID: event.NewID(), Source: event.SourceURI("dszn"), Type: event.Type("raw", "service", event.OpUpsert),
		Subject: "DSZN-1", EntityType: "service", Op: event.OpUpsert, ContentHash: "abc",
		Data: []byte(`{"name":"Семейная медиация"}`),
	}
	b, err := event.Marshal(in)
	require.NoError(t, err)
	require.Contains(t, string(b), `"specversion":"1.0"`)
	require.Contains(t, string(b), "Семейная медиация")
	var out event.Event
	require.NoError(t, event.Unmarshal(b, &out))
	require.Equal(t, in.ID, out.ID)
	require.Equal(t, "dszn", out.SourceName())
	require.JSONEq(t, string(in.Data), string(out.Data))
	require.Equal(t, "socialhub.raw.service.upsert", out.Type)
	require.Equal(t, "dszn/DSZN-1", event.Key(out.SourceName(), out.Subject))
}

func TestUnmarshalRejectsBadEnvelopes(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"not json":      `{"specversion":`,
		"invalid utf-8": "{\"id\":\"\xff\"}",
		"no id":         `{"specversion":"1.0","source":"s","type":"t"}`,
		"wrong version": `{"specversion":"0.3","id":"1","source":"s","type":"t"}`,
		"no type":       `{"specversion":"1.0","id":"1","source":"s"}`,
	} {
		var e event.Event
		err := event.Unmarshal([]byte(in), &e)
		require.ErrorIs(t, err, event.ErrInvalidEnvelope, name)
	}
}

func TestNewIDIsUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := event.NewID()
		require.Len(t, id, 36)
		require.False(t, seen[id])
		seen[id] = true
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2]}`))
	f.Add([]byte(`"строка"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := event.Canonical(b)
		if err != nil {
			return
		}
		// Canonical form is a fixed point.
		c2, err := event.Canonical(c)
		require.NoError(t, err)
		require.Equal(t, string(c), string(c2))
	})
}
