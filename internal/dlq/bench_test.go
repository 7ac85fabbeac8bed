package dlq_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/dlq"
	"socialhub/internal/event"
	"socialhub/internal/pgtest"
)

// BenchmarkIndex measures indexing dead letters in the indexer's batches of 500 (EntryOf and one
// Insert per batch): the work behind a broken source that sends all its records to dlq.
func BenchmarkIndex(b *testing.B) {
	db := pgtest.NewDB(b, dlq.Migrations())
	s := dlq.NewStore(db.Pool)
	const batch = 500
	msgs := make([]kafka.Message, batch)
	entries := make([]dlq.Entry, batch)
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for j := range msgs {
			msgs[j] = letter(b, "validate", "dszn", fmt.Sprintf("%d-%d", i, j), int64(n),
				event.Reason{Field: "email", Message: "не похоже на адрес почты"})
			n++
		}
		b.StartTimer()
		for j, m := range msgs {
			entries[j] = dlq.EntryOf(m)
		}
		_, err := s.Insert(context.Background(), entries)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
