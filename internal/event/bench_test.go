package event_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/event"
)

// benchRecords are a resident as the residents' connector writes it and a service as a department
// list's connector writes it, each in the envelope the connector puts on raw.
func benchRecords(tb testing.TB) map[string]*event.Event {
	tb.Helper()
	resident := []byte(`{"id":"3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea","address":{"address_1":"ул. Братиславская, д. 14, кв. 25","city":"Москва","postal_code":"109451","district":"Марьино","okrug":"ЮВАО"},"registered_since":"2011-04-12","birth_date":"1954-09-30","household":{"members":3,"children_under_18":1,"children_with_disabilities":0},"disability_group":"none","pensioner":true,"low_income":false,"large_family":false}`)
	service := map[string]any{
		"id": "DSZN-1042", "name": "Комната прохлады", "status": "active",
		"description": "Помещение с кондиционером и питьевой водой для пожилых и маломобильных жителей в жаркие дни; можно отдохнуть, измерить давление, получить консультацию социального работника.",
		"url":         "http://www.tcso-marino.mos.ru", "email": "priem@tcso-marino.mos.ru",
		"organization": map[string]any{"id": "ORG-77", "name": `ГБУ ТЦСО "Марьино"`, "website": "http://www.tcso-marino.mos.ru"},
		"phones":       []any{map[string]any{"id": "DSZN-1042/phone/0", "number": "+74951234567", "extension": 123}},
		"schedules": []any{map[string]any{
			"id": "DSZN-1042/schedule/0", "description": "пн-пт 9:00–18:00, обед 13-14", "freq": "WEEKLY",
			"byday": "MO,TU,WE,TH,FR", "opens_at": "09:00", "closes_at": "13:00", "timezone": 3,
		}},
		"attributes": []any{map[string]any{"id": "DSZN-1042/attr/0", "taxonomy_term_id": "social-support"}},
		"service_at_locations": []any{map[string]any{"id": "DSZN-1042/sal/0", "location": map[string]any{
			"id": "ORG-77/loc/0", "location_type": "physical", "name": "ТЦСО Марьино, филиал Люблино",
			"latitude": 55.65, "longitude": 37.74,
			"addresses": []any{map[string]any{
				"id": "ORG-77/loc/0/addr", "address_1": "ул. Братиславская, д. 14", "city": "Москва",
				"state_province": "Москва", "postal_code": "109451", "country": "RU", "address_type": "physical",
				"district": "Марьино", "okrug": "ЮВАО",
			}},
		}}},
	}
	serviceData, err := json.Marshal(service)
	require.NoError(tb, err)
	out := map[string]*event.Event{}
	for name, data := range map[string][]byte{"resident": resident, "service": serviceData} {
		h, err := event.ContentHash(data)
		require.NoError(tb, err)
		out[name] = &event.Event{
			ID: event.NewID(), Source: event.SourceURI("dszn"), Type: event.Type("raw", name, event.OpUpsert),
			Subject: "DSZN-1042", Time: time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC),
			DataSchema: "https://socialhub.city/schemas/hsds-3.0/v2/" + name + ".json", EntityType: name,
			Op: event.OpUpsert, ContentHash: h, Data: data,
		}
	}
	return out
}

// implementations pairs the code with the encoding/json code it replaced (compat_test.go), so one
// run shows both.
func BenchmarkUnmarshal(b *testing.B) {
	for name, ev := range benchRecords(b) {
		value, err := event.Marshal(ev)
		require.NoError(b, err)
		for impl, unmarshal := range map[string]func([]byte, *event.Event) error{"new": event.Unmarshal, "encoding_json": event.UnmarshalWithEncodingJSON} {
			b.Run(name+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(value)))
				for b.Loop() {
					var e event.Event
					if err := unmarshal(value, &e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	for name, ev := range benchRecords(b) {
		for impl, marshal := range map[string]func(*event.Event) ([]byte, error){"new": event.Marshal, "encoding_json": event.MarshalWithEncodingJSON} {
			b.Run(name+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(ev.Data)))
				for b.Loop() {
					if _, err := marshal(ev); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkContentHash(b *testing.B) {
	for name, ev := range benchRecords(b) {
		for impl, hash := range map[string]func([]byte) (string, error){"new": event.ContentHash, "encoding_json": oldContentHash} {
			b.Run(name+"/"+impl, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(ev.Data)))
				for b.Loop() {
					if _, err := hash(ev.Data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
