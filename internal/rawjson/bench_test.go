package rawjson_test

import (
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
