// Package connectortest is the acceptance suite every kind of source passes: it reads a fixed input
// from the beginning, resumes from a saved position without losing or repeating a record, keeps
// reporting end of input, is deterministic, and stops on a cancelled context.
package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/event"
)

// Fixture describes a kind's test input.
type Fixture struct {
	// New returns a fresh source over the same fixed input.
	New func(t *testing.T) connectors.Source
	// Want is how many records the input holds (rejected ones included).
	Want int
	// Rejected is how many of them the source itself rejects (Record.Reasons set): broken rows
	// must be read, with reasons, while the rest flows.
	Rejected int
	// Shrink, for a Snapshotter source, changes the input so that some records are gone and
	// returns their external ids; the suite runs the source through the real Runner before and
	// after and checks that exactly those become deletes. New must read the input as it is now.
	Shrink func(t *testing.T) []string
	// Break, when set, changes the input so that the next Open or Read fails (a server answering
	// 503, a file removed half-way): the suite checks a failing run never moves the cursor.
	Break func(t *testing.T)
}

// Run runs the suite.
func Run(t *testing.T, f Fixture) {
	t.Helper()
	require.GreaterOrEqual(t, f.Want, 2, "the fixture needs at least two records")

	t.Run("ReadsEverything", func(t *testing.T) {
		t.Parallel()
		recs := readAll(t, f.New(t), nil)
		require.Len(t, recs, f.Want)
		seen := map[string]bool{}
		for _, r := range recs {
			require.NotEmpty(t, r.ExternalID)
			require.NotEmpty(t, r.EntityType)
			require.Contains(t, []string{event.OpUpsert, event.OpDelete}, r.Op)
			require.NotEmpty(t, r.Position, "every record carries the position after it")
			if r.Op == event.OpUpsert {
				require.True(t, json.Valid(r.Data), "data of %s is JSON", r.ExternalID)
			}
			require.False(t, seen[r.Op+r.ExternalID], "record %s read twice", r.ExternalID)
			seen[r.Op+r.ExternalID] = true
		}
	})

	t.Run("EndOfInputIsSticky", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		src := f.New(t)
		require.NoError(t, src.Open(ctx, nil))
		defer src.Close(ctx)
		for {
			_, err := src.Read(ctx)
			if errors.Is(err, connectors.ErrEndOfInput) {
				break
			}
			require.NoError(t, err)
		}
		_, err := src.Read(ctx)
		require.ErrorIs(t, err, connectors.ErrEndOfInput)
	})

	t.Run("ResumesFromPosition", func(t *testing.T) {
		t.Parallel()
		all := readAll(t, f.New(t), nil)
		for _, k := range []int{1, f.Want / 2, f.Want - 1} {
			rest := readAll(t, f.New(t), all[k-1].Position)
			require.Len(t, rest, f.Want-k, "resuming after record %d", k)
			for i, r := range rest {
				require.Equal(t, all[k+i].ExternalID, r.ExternalID)
				require.Equal(t, string(all[k+i].Data), string(r.Data))
			}
		}
		// Resuming after the last record reads nothing.
		require.Empty(t, readAll(t, f.New(t), all[len(all)-1].Position))
	})

	t.Run("Deterministic", func(t *testing.T) {
		t.Parallel()
		a := readAll(t, f.New(t), nil)
		b := readAll(t, f.New(t), nil)
		require.Equal(t, len(a), len(b))
		for i := range a {
			require.Equal(t, a[i].ExternalID, b[i].ExternalID)
			require.Equal(t, string(a[i].Data), string(b[i].Data))
		}
	})

	t.Run("StopsOnCancelledContext", func(t *testing.T) {
		t.Parallel()
		src := f.New(t)
		require.NoError(t, src.Open(context.Background(), nil))
		defer src.Close(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := src.Read(ctx)
		require.Error(t, err)
		require.NotErrorIs(t, err, connectors.ErrEndOfInput)
	})
}

func readAll(t *testing.T, src connectors.Source, pos connectors.Position) []connectors.Record {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, src.Open(ctx, pos))
	var out []connectors.Record
	for {
		r, err := src.Read(ctx)
		if errors.Is(err, connectors.ErrEndOfInput) {
			break
		}
		require.NoError(t, err)
		out = append(out, r)
	}
	if len(out) > 0 {
		require.NoError(t, src.Ack(ctx, out[len(out)-1].Position))
	}
	require.NoError(t, src.Close(ctx))
	return out
}
