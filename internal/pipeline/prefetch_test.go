package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/pipeline"
)

func TestPrefetchKeepsOrderAndStopsAfterAnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	n := 0
	results, stop := pipeline.Prefetch(context.Background(), func(context.Context) (int, error) {
		n++
		if n == 4 {
			return 0, boom
		}
		return n, nil
	})
	defer stop()
	var got []int
	var err error
	for r := range results {
		if r.Err != nil {
			err = r.Err
			continue
		}
		got = append(got, r.Value)
	}
	require.Equal(t, []int{1, 2, 3}, got)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 4, n, "nothing is fetched after the error")
}

func TestPrefetchStaysOneAheadAndStops(t *testing.T) {
	t.Parallel()
	calls := make(chan int, 100)
	n := 0
	results, stop := pipeline.Prefetch(context.Background(), func(ctx context.Context) (int, error) {
		n++
		calls <- n
		return n, nil
	})
	r := <-results
	require.Equal(t, 1, r.Value)
	time.Sleep(50 * time.Millisecond)
	require.LessOrEqual(t, len(calls), 3, "one result waits in the channel, one in the goroutine: no more")
	stop()
	_, open := <-results
	require.False(t, open, "stop closes the results")
}

func TestPrefetchDropsTheErrorOfCancellation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	results, stop := pipeline.Prefetch(ctx, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	defer stop()
	cancel()
	for r := range results {
		t.Fatalf("a result after cancellation: %+v", r)
	}
}
