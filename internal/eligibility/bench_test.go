package eligibility_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"socialhub/internal/eligibility"
)

// benchResidents is how many residents the store holds before BenchmarkApply measures: set
// SOCIALHUB_BENCH_RESIDENTS (e.g. 1000000) to see the store at a size whose indexes exceed
// PostgreSQL's shared_buffers.
func benchResidents(tb testing.TB) int {
	v := os.Getenv("SOCIALHUB_BENCH_RESIDENTS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, "SOCIALHUB_BENCH_RESIDENTS")
	return n
}

// benchRecord is a resident as the registry sends it; variant changes the facts, not the id.
func benchRecord(i, variant int) eligibility.Record {
	facts := fmt.Sprintf(`{"address":{"address_1":"ул. Братиславская, д. %d, кв. %d","city":"Москва","district":"Марьино","okrug":"ЮВАО","postal_code":"109451"},`+
		`"birth_date":"%d-%02d-%02d","disability_group":%q,"household":{"children_under_18":%d,"children_with_disabilities":%d,"members":%d},`+
		`"id":%q,"large_family":%t,"low_income":%t,"pensioner":%t,"registered_since":"2001-01-01"}`,
		i%200, i%300, 1930+(i+variant)%80, 1+i%12, 1+i%28, []string{"none", "none", "none", "I", "II", "III", "child"}[i%7],
		(i+variant)%4, i%3/2, 1+(i+variant)%5, pseudonymOf(i), i%9 == 0, i%5 == 0, i%4 == 0)
	return eligibility.Record{Source: "residents", Pseudonym: pseudonymOf(i), Op: eligibility.OpUpsert, Facts: json.RawMessage(facts),
		SeenAt: time.Now()}
}

// cpuOf reads the CPU time a process has used so far (Linux; 0 elsewhere).
func cpuOf(pid uint32) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0
	}
	ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	return time.Duration(ns)
}

// BenchmarkApply measures Apply under the default rules in batches of 1000, with the store holding
// SOCIALHUB_BENCH_RESIDENTS residents first: new residents, changed ones and replays. It reports
// records/s and the CPU time PostgreSQL's backend spent per record (pg-µs/record).
func BenchmarkApply(b *testing.B) {
	rules, err := eligibility.DefaultRules()
	require.NoError(b, err)
	const batch = 1000
	for _, kind := range []string{"new", "changed", "replay"} {
		b.Run(kind, func(b *testing.B) {
			tb := setup(b)
			store := eligibility.NewStore(tb.db.Pool, eligibility.WithRules(rules))
			ctx := context.Background()
			conn, err := tb.db.Pool.Acquire(ctx)
			require.NoError(b, err)
			defer conn.Release()
			var pid uint32
			require.NoError(b, conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
			apply := func(recs []eligibility.Record) {
				tx, err := conn.Begin(ctx)
				require.NoError(b, err)
				_, err = store.Apply(ctx, tx, recs)
				require.NoError(b, err)
				require.NoError(b, tx.Commit(ctx))
			}
			preload := max(benchResidents(b), 20*batch)
			recs := make([]eligibility.Record, 0, 5000)
			for i := 0; i < preload; i++ {
				recs = append(recs, benchRecord(i, 0))
				if len(recs) == cap(recs) || i == preload-1 {
					apply(recs)
					recs = recs[:0]
				}
			}
			vacuum(b, tb.db.Pool)
			recs = recs[:batch]
			written, round := 0, 0
			cpu := cpuOf(pid)
			b.ResetTimer()
			for b.Loop() {
				for i := range recs {
					switch kind {
					case "new":
						recs[i] = benchRecord(preload+written+i, 0)
					case "changed":
						recs[i] = benchRecord((written+i)%preload, 1+round)
					case "replay":
						recs[i] = benchRecord((written+i)%preload, 0)
					}
				}
				apply(recs)
				written += batch
				if written%preload == 0 {
					round++
				}
			}
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64((cpuOf(pid)-cpu).Microseconds())/float64(written), "pg-µs/record")
		})
	}
}

func vacuum(b *testing.B, pool *pgxpool.Pool) {
	_, err := pool.Exec(context.Background(), `VACUUM ANALYZE`)
	require.NoError(b, err)
}
