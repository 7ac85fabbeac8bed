package validate_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/event"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

// TestCheckMatchesEncodingJSON runs Check and the encoding/json Check it replaced on the same
// documents — demo services (normalized), messy and unnormalizable ones, residents, version 1
// claims that upgrade, broken and odd JSON — and wants the same data, hash, counts and reasons.
func TestCheckMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	c := validate.NewChecker(newValidator(t))
	topics := event.NewTopics(event.DefaultPrefix)
	type doc struct {
		entity string
		data   []byte
	}
	var docs []doc
	for _, m := range demoMessages(t, topics, 200) {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		docs = append(docs, doc{schemas.EntityService, ev.Data})
	}
	for _, m := range residentMessages(t, topics, 200) {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		docs = append(docs, doc{schemas.EntityResident, ev.Data})
	}
	messy := messyDoc("DSZN-7")
	messy["fees"] = "бесплатно"
	messy["phones"] = []any{map[string]any{"id": "p", "number": "8 (495) 123-45-67 доб. 5", "extension": 7}, map[string]any{"id": "q", "number": "нет"}}
	docs = append(docs,
		doc{schemas.EntityService, mustJSON(t, messy)},
		doc{schemas.EntityService, mustJSON(t, serviceDoc("S-1"))},
		doc{schemas.EntityService, []byte(`{"id":"S-2","name":"a\u2028b \"q\" \ud83d\ude00","status":"active","name":"второе имя","organization":{"id":"O","name":"<&>"},"fees":{"b":1,"a":[1.50,-0e0]}}`)},
		doc{schemas.EntityResident, []byte(` {"id":"x", "pensioner": "yes"} `)},
		doc{schemas.EntityResident, []byte(`{"id":"x"} {"id":"y"}`)},
		doc{schemas.EntityResident, []byte(`{"id":`)},
		doc{schemas.EntityResident, []byte(``)},
		doc{schemas.EntityResident, []byte("{\"id\":\"\xff\"}")},
		doc{schemas.EntityOrganization, []byte(`{"id":"O-1","name":"ГБУ","name":"ГБУ ТЦСО","identifiers":[]}`)},
		doc{schemas.EntityLocation, []byte(`[1,2]`)},
	)
	r := rand.New(rand.NewPCG(5, 8))
	n := len(docs)
	for i := range n {
		d := docs[i]
		b := []byte(string(d.data))
		for range 3 {
			j := r.IntN(len(b) + 1)
			if j < len(b) {
				b = append(b[:j], b[j+1:]...) // a byte dropped: mostly broken JSON, sometimes a changed value
			}
			docs = append(docs, doc{d.entity, append([]byte(nil), b...)})
		}
	}
	for _, d := range docs {
		for _, claim := range []string{"", schemas.SchemaIDVersion(d.entity, 1), schemas.SchemaIDVersion(d.entity, schemas.CurrentVersion)} {
			want := c.CheckWithEncodingJSON(d.entity, claim, d.data)
			got := c.Check(d.entity, claim, d.data)
			// gojsonschema reports additional properties in map order, then and now: the parts of
			// a merged message may come in any order.
			want.Reasons, got.Reasons = sortedParts(want.Reasons), sortedParts(got.Reasons)
			require.Equal(t, want, got, "%s %s %s", d.entity, claim, d.data)
		}
	}
}

func sortedParts(rs []event.Reason) []event.Reason {
	for i, r := range rs {
		parts := strings.Split(r.Message, "; ")
		slices.Sort(parts)
		rs[i].Message = strings.Join(parts, "; ")
	}
	return rs
}
