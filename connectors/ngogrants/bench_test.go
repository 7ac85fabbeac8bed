package ngogrants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/demo"
)

func timeParse(s string) (time.Time, error) { return time.Parse(time.DateOnly, s) }

const benchRows = 50_000

func benchRead(b *testing.B, path string, want int) {
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		src := source(b, map[string]any{"path": path})
		require.NoError(b, src.Open(ctx, nil))
		got := 0
		for {
			_, err := src.Read(ctx)
			if errors.Is(err, connectors.ErrEndOfInput) {
				break
			}
			require.NoError(b, err)
			got++
		}
		require.NoError(b, src.Close(ctx))
		require.Equal(b, want, got)
		n += got
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadXLSX reads a 50 000-row demo workbook from its file to records.
func BenchmarkReadXLSX(b *testing.B) {
	raw, man := demoXLSX(b, demo.GrantsOptions{Rows: benchRows})
	path := writeFile(b, "list.xlsx", raw)
	b.SetBytes(int64(len(raw)))
	benchRead(b, path, len(man.Valid)+len(man.Broken))
}

// BenchmarkReadCSV reads a 50 000-row Windows-1251 demo list from its file to records.
func BenchmarkReadCSV(b *testing.B) {
	raw, man := demoCSV(b, demo.GrantsOptions{Rows: benchRows})
	path := writeFile(b, "list.csv", raw)
	b.SetBytes(int64(len(raw)))
	benchRead(b, path, len(man.Valid)+len(man.Broken))
}
