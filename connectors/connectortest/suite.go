// Package connectortest is the acceptance suite every kind of source passes: it reads a fixed input
// from the beginning, resumes from a saved position without losing or repeating a record, keeps
// reporting end of input, is deterministic, and stops on a cancelled context.
package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/broker"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
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

	// The subtests that read run in parallel inside this group; the ones that change the input
	// (Shrink, Break) run after the group has finished.
	t.Run("Reads", func(t *testing.T) { readSubtests(t, f) })
	mutatingSubtests(t, f)
}

func readSubtests(t *testing.T, f Fixture) {
	t.Run("ReadsEverything", func(t *testing.T) {
		t.Parallel()
		recs := ReadAll(t, f.New(t), nil)
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
		all := ReadAll(t, f.New(t), nil)
		for _, k := range []int{1, f.Want / 2, f.Want - 1} {
			rest := ReadAll(t, f.New(t), all[k-1].Position)
			require.Len(t, rest, f.Want-k, "resuming after record %d", k)
			for i, r := range rest {
				require.Equal(t, all[k+i].ExternalID, r.ExternalID)
				require.Equal(t, string(all[k+i].Data), string(r.Data))
			}
		}
		// Resuming after the last record reads nothing.
		require.Empty(t, ReadAll(t, f.New(t), all[len(all)-1].Position))
	})

	t.Run("Deterministic", func(t *testing.T) {
		t.Parallel()
		a := ReadAll(t, f.New(t), nil)
		b := ReadAll(t, f.New(t), nil)
		require.Equal(t, len(a), len(b))
		for i := range a {
			require.Equal(t, a[i].ExternalID, b[i].ExternalID)
			require.Equal(t, string(a[i].Data), string(b[i].Data))
		}
	})

	t.Run("SecondRunChangesNothing", func(t *testing.T) {
		t.Parallel()
		first := ReadAll(t, f.New(t), nil)
		byID := map[string]string{}
		for _, r := range first {
			byID[r.Op+r.ExternalID] = string(r.Data)
		}
		// A run from the saved position over the same input may re-read records, but only as
		// they were: later stages then skip them by content hash and emit no change.
		for _, r := range ReadAll(t, f.New(t), first[len(first)-1].Position) {
			data, ok := byID[r.Op+r.ExternalID]
			require.True(t, ok, "second run read a record the first did not: %s", r.ExternalID)
			require.Equal(t, data, string(r.Data), "second run changed %s", r.ExternalID)
		}
	})

	t.Run("RejectsBrokenRecordsWithReasons", func(t *testing.T) {
		t.Parallel()
		rejected := 0
		for _, r := range ReadAll(t, f.New(t), nil) {
			if len(r.Reasons) == 0 {
				continue
			}
			rejected++
			for _, reason := range r.Reasons {
				require.NotEmpty(t, reason.Field, "a reason of %s names no field", r.ExternalID)
				require.NotEmpty(t, reason.Message, "a reason of %s has no message", r.ExternalID)
			}
		}
		require.Equal(t, f.Rejected, rejected, "records the source rejects")
		// Through the real runner: rejected records land in dlq with their reasons, the rest in raw.
		h := newHarness(t, f)
		res := h.run(t, connectors.RunOptions{})
		require.Equal(t, int64(f.Want), res.Read)
		require.Equal(t, int64(f.Rejected), res.Rejected)
		require.Len(t, h.cluster.ReadAll(t, h.cluster.Topics.Raw), f.Want-f.Rejected)
		dead := h.cluster.ReadAll(t, h.cluster.Topics.DLQ)
		require.Len(t, dead, f.Rejected)
		for _, m := range dead {
			var ev event.Event
			require.NoError(t, event.Unmarshal(m.Value, &ev))
			var dl event.DeadLetter
			require.NoError(t, json.Unmarshal(ev.Data, &dl))
			require.Equal(t, "connector", dl.Stage)
			require.NotEmpty(t, dl.Reasons)
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

func mutatingSubtests(t *testing.T, f Fixture) {
	if f.Shrink != nil {
		t.Run("DeletesWhatAFullSnapshotNoLongerHolds", func(t *testing.T) {
			// Not parallel: Shrink changes the fixture's input.
			h := newHarness(t, f)
			_, ok := f.New(t).(connectors.Snapshotter)
			require.True(t, ok, "a fixture with Shrink must be a connectors.Snapshotter")
			first := h.run(t, connectors.RunOptions{})
			require.Zero(t, first.Deleted)
			before := len(h.cluster.ReadAll(t, h.cluster.Topics.Raw))
			gone := f.Shrink(t)
			require.NotEmpty(t, gone, "Shrink must remove records")
			second := h.run(t, connectors.RunOptions{})
			require.Equal(t, int64(len(gone)), second.Deleted)
			var deleted []string
			for _, m := range h.cluster.ReadAll(t, h.cluster.Topics.Raw) {
				var ev event.Event
				require.NoError(t, event.Unmarshal(m.Value, &ev))
				if ev.Op == event.OpDelete {
					deleted = append(deleted, ev.Subject)
				}
			}
			require.ElementsMatch(t, gone, deleted)
			// Once done, a third run over the same input deletes nothing more.
			after := len(h.cluster.ReadAll(t, h.cluster.Topics.Raw))
			require.Greater(t, after, before)
			third := h.run(t, connectors.RunOptions{})
			require.Zero(t, third.Deleted)
		})
	}

	if f.Break != nil {
		t.Run("FailedRunKeepsTheCursor", func(t *testing.T) {
			// Not parallel: Break changes the fixture's input.
			h := newHarness(t, f)
			h.run(t, connectors.RunOptions{})
			saved, err := h.checkpoints.Load(context.Background(), suiteSource)
			require.NoError(t, err)
			raw := len(h.cluster.ReadAll(t, h.cluster.Topics.Raw))
			f.Break(t)
			_, err = h.runner.Run(context.Background(), h.cfg, connectors.RunOptions{})
			require.Error(t, err, "a broken input must fail the run")
			after, err := h.checkpoints.Load(context.Background(), suiteSource)
			require.NoError(t, err)
			require.Equal(t, string(saved), string(after), "a failed run must not move the cursor")
			for _, m := range h.cluster.ReadAll(t, h.cluster.Topics.Raw)[raw:] {
				var ev event.Event
				require.NoError(t, event.Unmarshal(m.Value, &ev))
				require.NotEqual(t, event.OpDelete, ev.Op, "a failed run must delete nothing")
			}
		})
	}

}

// ReadAll opens src at pos, reads until end of input, acknowledges the last record and closes it.
func ReadAll(t testing.TB, src connectors.Source, pos connectors.Position) []connectors.Record {
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

// suiteSource names the source the runner-level subtests run.
const suiteSource = "suite"

// harness is the real runner over a test database and an in-process Kafka cluster.
type harness struct {
	cluster     *kafkatest.Cluster
	checkpoints *connectors.Checkpoints
	runner      *connectors.Runner
	cfg         config.Source
}

func newHarness(t *testing.T, f Fixture) *harness {
	t.Helper()
	db := pgtest.NewDB(t, connectors.Migrations())
	cluster := kafkatest.New(t, 1)
	writer := broker.NewWriter(cluster.Config)
	t.Cleanup(func() { _ = writer.Close() })
	reg := connectors.NewRegistry(connectors.Kind{Name: "suite", New: func(config.Source, connectors.Deps) (connectors.Source, error) {
		return f.New(t), nil
	}})
	h := &harness{cluster: cluster, checkpoints: connectors.NewCheckpoints(db.Pool), cfg: config.Source{Name: suiteSource, Kind: "suite"}}
	h.runner = connectors.NewRunner(connectors.RunnerOptions{
		Registry: reg, Checkpoints: h.checkpoints, Producer: writer, Topics: cluster.Topics,
		BatchSize: 7, Retries: 1, Backoff: time.Millisecond,
	})
	return h
}

func (h *harness) run(t *testing.T, ro connectors.RunOptions) connectors.RunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.runner.Run(ctx, h.cfg, ro)
	require.NoError(t, err)
	return res
}
