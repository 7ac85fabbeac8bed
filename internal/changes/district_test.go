package changes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/changes"
)

var districtDocs = []string{
	``,
	`{}`,
	`{"district":"Марьино"}`,
	`{"addresses":[{"address_1":"ул. Тверская, д. 1","district":"Тверской"}],"name":"x"}`,
	`{"addresses":[{"district":""},{"district":"Хамовники"}]}`,
	`{"location":{"addresses":[{"district":"Арбат"}]}}`,
	`{"id":"s1","name":"Услуга","service_at_locations":[{"id":"sal","location":{"id":"l","addresses":[{"district":"Люблино","okrug":"ЮВАО"}]}}],"organization":{"addresses":[{"district":"no"}]}}`,
	`{"service_at_locations":[{"district":"ignored","location":{"district":"Митино"}}]}`,
	`{"district":"Арбат","addresses":[{"district":"Хамовники"}]}`,
	` { "district" : "spaced" } `,
	`{"District":"upper case key"}`,
	`{"distric\u0074":"escaped key"}`,
	`{"district":"esc\u0061ped \"value\""}`,
	`{"district":1}`,
	`{"district":null,"addresses":[{"district":"after null"}]}`,
	`{"district":"a","district":"twice"}`,
	`{"location":{"district":"a"},"location":{"addresses":[]}}`,
	`{"addresses":{"district":"not an array"}}`,
	`{"addresses":["not an object"]}`,
	`{"addresses":[{"district":"x"},]}`,
	`{"district":"x"} trailing`,
	`[{"district":"x"}]`,
	`{"district":"x"`,
	`{"addreſſes":[{"district":"long s"}]}`,
	`{"service_at_locations":[{"location":{"district":"x"}}],"service_at_locations":[]}`,
	"{\"district\":\"\xff invalid utf-8\"}",
}

func TestDistrictOfAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range districtDocs {
		require.Equal(t, changes.DistrictOfWithEncodingJSON([]byte(doc)), changes.DistrictOf([]byte(doc)), "doc %s", doc)
	}
	require.Equal(t, "Люблино", changes.DistrictOf([]byte(districtDocs[6])))
}

func FuzzDistrictOf(f *testing.F) {
	for _, doc := range districtDocs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if got, want := changes.DistrictOf(doc), changes.DistrictOfWithEncodingJSON(doc); got != want {
			t.Fatalf("DistrictOf(%q) = %q, encoding/json says %q", doc, got, want)
		}
	})
}
