package residents_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/demo"
	"socialhub/internal/pgtest"
)

const benchResidents = 100_000

// drain reads a whole run and returns how many records it gave.
func drain(b *testing.B, src connectors.Source) int {
	ctx := context.Background()
	require.NoError(b, src.Open(ctx, nil))
	n := 0
	for {
		_, err := src.Read(ctx)
		if errors.Is(err, connectors.ErrEndOfInput) {
			break
		}
		require.NoError(b, err)
		n++
	}
	require.NoError(b, src.Close(ctx))
	return n
}

// BenchmarkTableRead reads 100 000 residents from a registry table in pages of 5000.
func BenchmarkTableRead(b *testing.B) {
	db := pgtest.NewDB(b)
	require.NoError(b, demo.WriteResidentsTable(context.Background(), db.Pool, demo.DefaultResidentsTable, benchResidents, 1))
	opts := tableOptions(map[string]any{"page_size": 5000})
	total := 0
	b.ReportAllocs()
	for b.Loop() {
		total += drain(b, source(b, opts, env(db.URL)))
	}
	require.Equal(b, b.N*benchResidents, total)
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSnapshotRead reads a 100 000-resident export, as CSV and as JSONL.
func BenchmarkSnapshotRead(b *testing.B) {
	for _, format := range []string{demo.FormatCSV, demo.FormatJSONL} {
		b.Run(format, func(b *testing.B) {
			var buf bytes.Buffer
			require.NoError(b, demo.WriteResidentsSnapshot(&buf, format, benchResidents, 1))
			path := filepath.Join(b.TempDir(), "residents."+format)
			require.NoError(b, os.WriteFile(path, buf.Bytes(), 0o600))
			opts := map[string]any{"mode": "snapshot", "path": path, "format": format}
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			total := 0
			for b.Loop() {
				total += drain(b, source(b, opts, env("")))
			}
			require.Equal(b, b.N*benchResidents, total)
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
