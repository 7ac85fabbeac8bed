package event_test

import (
	"testing"

	"socialhub/internal/event"
)

// FuzzUnmarshal feeds the envelope decoder arbitrary bytes: it never panics.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"socialhub/x","type":"socialhub.raw.service.upsert","subject":"a","data":{"name":"Комната прохлады"}}`))
	f.Add([]byte(`{"specversion":"1.0","data":{`))
	f.Add([]byte("\xff\xfe"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e event.Event
		_ = event.Unmarshal(b, &e)
	})
}
