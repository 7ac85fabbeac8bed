package validate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/event"
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
