package match_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/match"
)

// Points ranks candidates without naming what matched; it must score exactly as Score does, or
// the catalog would merge a different candidate than the one it explains.
func TestPointsIsScoresScore(t *testing.T) {
	t.Parallel()
	cfg := match.DefaultConfig()
	names := []string{"ГБУ ТЦСО «Марьино»", "ТЦСО Марьино", "Центр социального обслуживания «Марьино»", "ГБУ ЦСО Люблино", "АНО «Дом для мамы»"}
	streets := []string{"ул. Братиславская, д. 14", "Братиславская ул., 14", "ул. Братиславская, д. 16", "Люблинская ул., д. 5"}
	var orgs, locs, svcs []match.Features
	for i, name := range names {
		orgs = append(orgs, match.OrganizationFeatures("src", map[string]any{
			"name": name, "email": fmt.Sprintf("info%d@tcso.ru", i%2), "website": "https://tcso.ru",
			"phones": []any{map[string]any{"number": fmt.Sprintf("+7495000000%d", i%3)}},
		}))
	}
	for i, street := range streets {
		locs = append(locs, match.LocationFeatures("src", fmt.Sprint("org-", i%2), map[string]any{
			"name": names[i], "latitude": 55.65 + float64(i)*0.0004, "longitude": 37.74,
			"addresses": []any{map[string]any{"address_1": street, "city": "Москва", "district": []string{"Марьино", "Люблино"}[i%2]}},
		}))
	}
	for i, name := range []string{"Социальное такси", "Социальное такси для инвалидов", "Срочная социальная помощь"} {
		svcs = append(svcs, match.ServiceFeatures("src", fmt.Sprint("org-", i%2), []string{"loc-1"}, map[string]any{
			"name": name, "attributes": []any{map[string]any{"taxonomy_term_id": "transport"}},
		}))
	}
	pairs, scored := 0, 0
	for _, set := range [][]match.Features{orgs, locs, svcs} {
		for i := range set {
			for j := range set {
				want := cfg.Score(&set[i], &set[j])
				require.Equal(t, want.Score, cfg.Points(&set[i], &set[j]), "pair %d, %d: %v", i, j, want.Matched)
				pairs++
				if want.Score > 0 && i != j {
					scored++
				}
			}
		}
	}
	require.Equal(t, 25+16+9, pairs)
	require.Greater(t, scored, 15, "pairs that share something")
}
