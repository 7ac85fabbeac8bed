package rawjson_test

import (
	"encoding/json"
	"testing"

	"socialhub/internal/rawjson"
)

var residentDoc = []byte(`{"id":"3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea","address":{"address_1":"ул. Братиславская, д. 14, кв. 25","city":"Москва","postal_code":"109451","district":"Марьино","okrug":"ЮВАО"},"registered_since":"2011-04-12","birth_date":"1954-09-30","household":{"members":3,"children_under_18":1,"children_with_disabilities":0},"disability_group":"none","pensioner":true,"low_income":false,"large_family":false}`)

func BenchmarkAppendCanonical(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		if _, err := rawjson.AppendCanonical(buf[:0], residentDoc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rawjson.Decode(residentDoc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendValue(b *testing.B) {
	doc, err := rawjson.Decode(residentDoc)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		if _, err := rawjson.AppendValue(buf[:0], doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSkipService(b *testing.B) {
	doc := []byte(`{"attributes":[{"id":"DSZN-1042/attr/0","taxonomy_term_id":"social-support"}],"description":"Помещение с кондиционером и питьевой водой для пожилых и маломобильных жителей в жаркие дни; можно отдохнуть, измерить давление, получить консультацию социального работника.","email":"priem@tcso-marino.mos.ru","id":"DSZN-1042","name":"Комната прохлады","organization":{"id":"ORG-77","name":"ГБУ ТЦСО \"Марьино\"","website":"http://www.tcso-marino.mos.ru"},"phones":[{"extension":123,"id":"DSZN-1042/phone/0","number":"+74951234567"}],"schedules":[{"byday":"MO,TU,WE,TH,FR","closes_at":"13:00","description":"пн-пт 9:00–18:00, обед 13-14","freq":"WEEKLY","id":"DSZN-1042/schedule/0","opens_at":"09:00","timezone":3}],"service_at_locations":[{"id":"DSZN-1042/sal/0","location":{"addresses":[{"address_1":"ул. Братиславская, д. 14","address_type":"physical","city":"Москва","country":"RU","district":"Марьино","id":"ORG-77/loc/0/addr","okrug":"ЮВАО","postal_code":"109451","state_province":"Москва"}],"id":"ORG-77/loc/0","latitude":55.65,"location_type":"physical","longitude":37.74,"name":"ТЦСО Марьино, филиал Люблино"}}],"status":"active","url":"http://www.tcso-marino.mos.ru"}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, ok := rawjson.Skip(doc, 0); !ok {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkSkipResident(b *testing.B) {
	b.SetBytes(int64(len(residentDoc)))
	for b.Loop() {
		if _, ok := rawjson.Skip(residentDoc, 0); !ok {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidEncodingJSON(b *testing.B) {
	b.SetBytes(int64(len(residentDoc)))
	for b.Loop() {
		if !json.Valid(residentDoc) {
			b.Fatal("invalid")
		}
	}
}
