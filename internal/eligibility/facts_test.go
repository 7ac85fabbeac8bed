package eligibility

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var factsSeeds = []string{
	`{"address":{"address_1":"ул. Братиславская, д. 1","city":"Москва","district":"Марьино","okrug":"ЮВАО","postal_code":"109451"},"birth_date":"1960-02-03","disability_group":"II","household":{"children_under_18":1,"children_with_disabilities":0,"members":3},"id":"ab","large_family":false,"low_income":true,"pensioner":true,"registered_since":"2001-01-01"}`,
	`{"id": "x", "address": {"city": "Москва", "okrug": "ЮВАО"}, "pensioner": true, "household": {"members": 2}}`,
	`{"pensioner":null,"address":null,"household":{"members":null},"extra":[1,{"a":[true,false,null]},"s",-0.5e+3],"z":{}}`,
	`{"address":{"district":"A"},"address":{"okrug":"B"},"pensioner":true,"pensioner":false}`,
	`{"Pensioner":true}`,
	`{"pensioner":"да"}`,
	`{"household":{"members":1.0}}`,
	`{"household":{"members":99999999999999999999}}`,
	`{"birth_date":"\u0031960-01-01"}`,
	"{\"district\":\"\xff\"}",
	`{"address":{"district":"bad \xff"}}`,
	`{"a":1}x`,
	`{"a":01}`,
	`[1]`,
	`{}`,
	` {"low_income" : true } `,
	`{"address":{"okrug":"ЮВАО","deep":{"x":{"y":[[[]]]}}}}`,
}

// The fast path and encoding/json agree on every document the fast path takes.
func TestParseFastAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	fast := 0
	for _, doc := range factsSeeds {
		if checkParseFast(t, []byte(doc)) {
			fast++
		}
	}
	require.GreaterOrEqual(t, fast, 6, "the plain documents take the fast path")
}

func FuzzParseFacts(f *testing.F) {
	for _, s := range factsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { checkParseFast(t, doc) })
}

func checkParseFast(t *testing.T, doc []byte) bool {
	var got Facts
	if !got.parseFast(doc) {
		return false
	}
	var want Facts
	require.NoError(t, json.Unmarshal(doc, &want), "%s", doc)
	require.Equal(t, want, got, "%s", doc)
	return true
}

func BenchmarkParseFacts(b *testing.B) {
	doc := []byte(factsSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFacts(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide decides a resident under the default rules: as Apply does it now, and as it did
// before (encoding/json, a map of variables per resident).
func BenchmarkDecide(b *testing.B) {
	rules, err := DefaultRules()
	if err != nil {
		b.Fatal(err)
	}
	doc := []byte(factsSeeds[0])
	today := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	b.Run("apply", func(b *testing.B) {
		d := newDecider(rules.list, today)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := d.decide(doc); !ok {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f Facts
			if err := json.Unmarshal(doc, &f); err != nil {
				b.Fatal(err)
			}
			vars := f.Activation(today)
			for _, r := range rules.list {
				r.Eval(vars)
			}
		}
	})
}
