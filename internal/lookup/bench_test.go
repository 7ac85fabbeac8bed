package lookup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"socialhub/internal/clients"
	"socialhub/internal/demo"
	"socialhub/internal/normalize"
)

// benchResidents is the registry size of BenchmarkLookup; SOCIALHUB_BENCH_RESIDENTS scales it
// (1000000 for the figure).
func benchResidents() int {
	if n, err := strconv.Atoi(os.Getenv("SOCIALHUB_BENCH_RESIDENTS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// loadRegistry COPYs the demo registry's residents into the eligibility store as the residents
// connector would shape them, and returns their СНИЛС numbers.
func (b testBundle) loadRegistry(tb testing.TB, n int) []string {
	tb.Helper()
	ctx := context.Background()
	rows := demo.Residents(n, 1)
	snilses := make([]string, len(rows))
	i := 0
	now := time.Now()
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(rows) {
			return nil, nil
		}
		r := rows[i]
		snilses[i] = r.SNILS
		i++
		ps, err := b.pseudo.Pseudonym(r.SNILS)
		if err != nil {
			return nil, err
		}
		place, _ := normalize.District(r.District)
		okrug, _ := normalize.Okrug(r.Okrug)
		group := map[string]string{"": "none", demo.RegistryDisabilityChild: "child"}[r.DisabilityGroup]
		if group == "" {
			group = r.DisabilityGroup
		}
		doc, err := json.Marshal(map[string]any{
			"id": ps, "birth_date": r.BirthDate.Format(time.DateOnly), "registered_since": r.RegisteredSince.Format(time.DateOnly),
			"address":          map[string]any{"address_1": r.Address, "city": "Москва", "district": place.District, "okrug": okrug},
			"household":        map[string]any{"members": r.HouseholdMembers, "children_under_18": r.ChildrenUnder18, "children_with_disabilities": r.ChildrenWithDisabilities},
			"disability_group": group, "pensioner": r.Pensioner, "low_income": r.LowIncome, "large_family": r.LargeFamily,
		})
		if err != nil {
			return nil, err
		}
		return []any{ps, "residents", string(doc), strings.Repeat("0", 64), now, now}, nil
	})
	_, err := b.db.Pool.CopyFrom(ctx, pgx.Identifier{"eligibility_residents"},
		[]string{"pseudonym", "source", "facts", "content_hash", "seen_at", "updated_at"}, src)
	require.NoError(tb, err)
	_, err = b.db.Pool.Exec(ctx, `ANALYZE eligibility_residents`)
	require.NoError(tb, err)
	_, err = b.elig.Refresh(ctx, nil)
	require.NoError(tb, err)
	return snilses
}

// BenchmarkLookup runs lookups with attestations through the real handler over HTTP, 64 clients
// at once, each lookup asking three claims about a random resident by national id.
func BenchmarkLookup(b *testing.B) {
	tb := setup(b)
	n := benchResidents()
	snilses := tb.loadRegistry(b, n)
	_, token := tb.client(b, clients.KindDepartment, clients.ScopeLookupPensionStatus, clients.ScopeLookupRegisteredAddress,
		clients.ScopeLookupHouseholdComposition)
	_, err := tb.db.Pool.Exec(context.Background(), `UPDATE api_clients SET rate = 1e9, burst = 1000000000`)
	require.NoError(b, err)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: transport}
	const workers = 64
	var next atomic.Int64
	latencies := make([][]time.Duration, workers)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body, _ := json.Marshal(map[string]any{
					"subject": map[string]any{"national_id": snilses[(i*7919)%int64(len(snilses))]},
					"claims": []any{map[string]any{"type": "pension_status"}, map[string]any{"type": "registered_address", "okrug": "ЮВАО"},
						map[string]any{"type": "household_composition", "children_with_disabilities": 1}},
					"purpose": "subsidy", "case_id": "bench-" + strconv.FormatInt(i, 10),
				})
				req, _ := http.NewRequest(http.MethodPost, tb.srv.URL+"/v1/lookups", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var out struct {
					Attestation string `json:"attestation"`
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				latencies[w] = append(latencies[w], time.Since(start))
				if err != nil || resp.StatusCode != http.StatusOK || out.Attestation == "" {
					b.Errorf("lookup: %d %v", resp.StatusCode, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n), "residents")
}
