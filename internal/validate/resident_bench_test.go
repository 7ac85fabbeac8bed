package validate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

// residentMessages are raw records as the residents' connector writes them (its struct's field
// order, household and postal code present), most of the stream the stage sees.
func residentMessages(tb testing.TB, topics event.Topics, n int) []kafka.Message {
	tb.Helper()
	okrugs := []string{"ЦАО", "САО", "СВАО", "ВАО", "ЮВАО", "ЮАО", "ЮЗАО", "ЗАО", "СЗАО", "ЗелАО", "НАО", "ТАО"}
	groups := []string{"none", "I", "II", "III", "child"}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		id := hex.EncodeToString(sum[:])
		data := fmt.Sprintf(`{"id":%q,"address":{"address_1":"ул. Братиславская, д. %d, кв. %d","city":"Москва","postal_code":"1094%02d","district":"Марьино","okrug":%q},"registered_since":"20%02d-0%d-1%d","birth_date":"19%02d-1%d-2%d","household":{"members":%d,"children_under_18":%d,"children_with_disabilities":0},"disability_group":%q,"pensioner":%t,"low_income":%t,"large_family":false}`,
			id, i%90+1, i%300+1, i%100, okrugs[i%len(okrugs)], i%25, i%9+1, i%10, 30+i%60, i%3, i%10, i%6+1, i%3, groups[i%len(groups)], i%2 == 0, i%7 == 0)
		msgs[i] = rawMessage(tb, topics, rawEvent(tb, id, schemas.EntityResident, event.OpUpsert, []byte(data)))
	}
	return msgs
}

// BenchmarkProcessResident measures the stage on resident records: envelope in, schema check,
// canonical form and content hash, envelope out.
func BenchmarkProcessResident(b *testing.B) {
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(b), Metrics: metrics.New(), Now: func() time.Time { return fixedNow }})
	msgs := residentMessages(b, topics, 500)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		out, err := s.Process(msgs[n%len(msgs)])
		if err != nil || out.Topic != topics.Valid {
			b.Fatal(fmt.Sprint("unexpected ", out.Topic, err, string(out.Value)))
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkValidateResident is Checker.Check on resident documents.
func BenchmarkValidateResident(b *testing.B) {
	c := validate.NewChecker(newValidator(b))
	msgs := residentMessages(b, event.NewTopics(event.DefaultPrefix), 500)
	docs := make([][]byte, len(msgs))
	for i, m := range msgs {
		var ev event.Event
		require.NoError(b, event.Unmarshal(m.Value, &ev))
		docs[i] = ev.Data
	}
	claim := schemas.SchemaID(schemas.EntityResident)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		res := c.Check(schemas.EntityResident, claim, docs[n%len(docs)])
		if len(res.Reasons) > 0 {
			b.Fatal(res.Reasons)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
