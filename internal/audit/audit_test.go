package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/audit"
	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db  *pgtest.DB
	log *audit.Log
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, audit.Migrations())
	return testBundle{db: db, log: audit.New(db.Pool)}
}

func entry(i int) audit.Entry {
	return audit.Entry{
		ClientID: "c1", ClientName: "УСЗН ЮВАО", ClientKind: "department", Action: audit.ActionLookup,
		Outcome: audit.OutcomeAnswered, Status: 200, Subject: fmt.Sprintf("%064x", i%3), Purpose: "subsidy",
		CaseID: fmt.Sprintf("дело-%d", i), Detail: json.RawMessage(fmt.Sprintf(`{"claims": ["pension_status"], "n": %d, "html": "<&>"}`, i)),
	}
}

func TestAppendAndVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	head, err := b.log.Verify(ctx)
	require.NoError(t, err)
	require.Zero(t, head.Rows)

	// Concurrent appends still make one chain without gaps.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			_, err := b.log.Append(ctx, entry(i))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	head, err = b.log.Verify(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 40, head.Rows)
	require.EqualValues(t, 40, head.Seq)

	e, err := b.log.Get(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, audit.GenesisHash, e.PrevHash)
	first, err := b.log.Get(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, e.Hash, first.PrevHash)

	got, err := b.log.ForSubject(ctx, fmt.Sprintf("%064x", 1), 0, 5)
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.Greater(t, got[0].Seq, got[1].Seq, "newest first")

	_, err = b.log.Append(ctx, audit.Entry{Action: audit.ActionLookup})
	require.ErrorIs(t, err, audit.ErrInvalidEntry)
}

func TestRowsCannotBeChanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.log.Append(ctx, entry(1))
	require.NoError(t, err)
	for _, sql := range []string{
		`UPDATE audit_log SET purpose = 'other'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
	} {
		_, err := b.db.Pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
}

// tamper changes the table behind the trigger's back, as only its owner or a superuser could.
func tamper(t *testing.T, b testBundle, sql string) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, sql)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `ALTER TABLE audit_log ENABLE TRIGGER USER`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

func TestVerifyFindsTheFirstBrokenRow(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		sql     string
		seq     int64
		message string
	}{
		"changed purpose":    {`UPDATE audit_log SET purpose = 'любопытство' WHERE seq = 4`, 4, "does not match its hash"},
		"changed detail":     {`UPDATE audit_log SET detail = '{"claims":[]}' WHERE seq = 6`, 6, "does not match its hash"},
		"changed time":       {`UPDATE audit_log SET at = at + interval '1 second' WHERE seq = 2`, 2, "does not match its hash"},
		"deleted row":        {`DELETE FROM audit_log WHERE seq = 5`, 5, "missing"},
		"deleted last row":   {`DELETE FROM audit_log WHERE seq = 8`, 8, "removed from the end"},
		"rehashed one row":   {`UPDATE audit_log SET subject = '', hash = repeat('a', 64) WHERE seq = 3`, 3, "does not match its hash"},
		"relinked next row":  {`UPDATE audit_log SET prev_hash = repeat('b', 64) WHERE seq = 7`, 7, "prev_hash"},
		"renumbered the end": {`UPDATE audit_log SET seq = 9 WHERE seq = 8`, 8, "missing"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			for i := range 8 {
				_, err := b.log.Append(ctx, entry(i))
				require.NoError(t, err)
			}
			_, err := b.log.Verify(ctx)
			require.NoError(t, err)
			tamper(t, b, tc.sql)
			_, err = b.log.Verify(ctx)
			require.ErrorIs(t, err, audit.ErrBroken)
			be, ok := audit.IsBroken(err)
			require.True(t, ok)
			require.Equal(t, tc.seq, be.Seq, err.Error())
			require.ErrorContains(t, err, tc.message)
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	tb := setup(b)
	ctx := context.Background()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, err := tb.log.Append(ctx, entry(i))
			if err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// Appends are committed in groups: many at once still make one chain, each Append returns its
// row as stored, and times follow sequence numbers.
func TestGroupedAppends(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const n = 300
	got := make([]audit.Entry, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, err := b.log.Append(ctx, entry(i))
			require.NoError(t, err)
			got[i] = e
		})
	}
	wg.Wait()
	head, err := b.log.Verify(ctx)
	require.NoError(t, err)
	require.EqualValues(t, n, head.Rows)
	seen := map[int64]bool{}
	for _, e := range got {
		require.False(t, seen[e.Seq], "sequence number %d given twice", e.Seq)
		seen[e.Seq] = true
		stored, err := b.log.Get(ctx, e.Seq)
		require.NoError(t, err)
		require.Equal(t, stored, e, "Append returns the row as stored")
	}
	var prev time.Time
	for seq := int64(1); seq <= n; seq++ {
		e, err := b.log.Get(ctx, seq)
		require.NoError(t, err)
		require.False(t, e.At.Before(prev), "row %d is older than the one before it", seq)
		prev = e.At
	}
}
