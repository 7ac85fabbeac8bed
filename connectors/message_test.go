package connectors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"socialhub/internal/event"
)

// BenchmarkMessage wraps a resident-sized record in its envelope, its content hash given by the
// source (as the residents connector gives it) and not.
func BenchmarkMessage(b *testing.B) {
	data := json.RawMessage(`{"address":{"address_1":"ул. Братиславская, д. 14, кв. 88","city":"Москва","district":"Марьино","okrug":"ЮВАО","postal_code":"109451"},` +
		`"birth_date":"1958-03-01","disability_group":"none","household":{"children_under_18":0,"children_with_disabilities":0,"members":2},` +
		`"id":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b","large_family":false,"low_income":false,"pensioner":true,"registered_since":"2001-01-01"}`)
	sum := sha256.Sum256(data)
	r := NewRunner(RunnerOptions{Topics: event.NewTopics(event.DefaultPrefix)})
	for _, given := range []bool{true, false} {
		name := "hash-computed"
		if given {
			name = "hash-given"
		}
		b.Run(name, func(b *testing.B) {
			env := r.envelopes("residents")
			rec := Record{ExternalID: "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b", EntityType: "resident",
				Op: event.OpUpsert, Data: data}
			if given {
				rec.ContentHash = hex.EncodeToString(sum[:])
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := env.message(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
