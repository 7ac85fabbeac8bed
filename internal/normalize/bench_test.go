package normalize_test

import (
	"testing"

	"socialhub/internal/normalize"
)

// BenchmarkPhones reads demo-like phone fields, one or two numbers with an extension.
func BenchmarkPhones(b *testing.B) {
	in := []string{"+7 (495) 123-45-67", "8 499 765 43 21", "8 (495) 123-45-67 доб. 123, 8-800-200-01-22", "+7 499 111-22-33"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := normalize.Phones(in[n%len(in)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpeningHours reads the hours the demo generator writes.
func BenchmarkOpeningHours(b *testing.B) {
	in := []string{"пн-пт 9:00–18:00", "пн-чт 9:00–18:00, пт 9:00–16:45", "ежедневно с 8 до 20", "пн-пт 8:00–20:00, сб 10:00–16:00",
		"вт, чт 10:00–19:00", "пн-пт с 9 до 18, обед 13:00–13:45", "круглосуточно"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := normalize.OpeningHours(in[n%len(in)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
