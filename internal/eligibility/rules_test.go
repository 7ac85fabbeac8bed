package eligibility_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/eligibility"
	"socialhub/internal/pgtest"
	"socialhub/internal/store"
)

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	respite, ok := rules.Get("respite-care")
	require.True(t, ok)
	require.False(t, respite.DependsOnDate())
	cooling, ok := rules.Get("cooling-rooms")
	require.True(t, ok)
	require.True(t, cooling.DependsOnDate())
	require.True(t, respite.Governs("x", []string{"families-with-children"}, "Социальная «Передышка» для родителей"))
	require.False(t, respite.Governs("x", []string{"families-with-children"}, "Пособие на ребёнка"))
	require.True(t, cooling.Governs("x", []string{"cooling-rooms"}, "Комната прохлады"))
}

func TestRulesDecide(t *testing.T) {
	t.Parallel()
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	today := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	decide := func(id, doc string) bool {
		f, err := eligibility.ParseFacts([]byte(doc))
		require.NoError(t, err)
		r, _ := rules.Get(id)
		return r.Eval(f.Activation(today))
	}
	family := `{"birth_date":"1985-03-01","disability_group":"none","household":{"members":4,"children_under_18":2,"children_with_disabilities":1}}`
	require.True(t, decide("respite-care", family))
	require.False(t, decide("respite-care", `{"birth_date":"1985-03-01","household":{"members":2,"children_under_18":1,"children_with_disabilities":0}}`))
	// 60 years old tomorrow: not yet.
	require.False(t, decide("cooling-rooms", `{"birth_date":"1965-06-02","disability_group":"none"}`))
	require.True(t, decide("cooling-rooms", `{"birth_date":"1965-06-01","disability_group":"none"}`))
	require.True(t, decide("cooling-rooms", `{"birth_date":"1990-01-01","disability_group":"III"}`))
	require.True(t, decide("care-homes", `{"birth_date":"1990-01-01","disability_group":"II"}`))
	require.False(t, decide("care-homes", `{"birth_date":"1990-01-01","disability_group":"III"}`))
}

func TestLoadRulesErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		doc  string
		want []string
	}{
		"syntax error with position": {`[{"id":"a","services":{"taxonomy_term":"cooling-rooms"},"rule":"age >= ","explanation":"x"}]`,
			[]string{"rule a", "does not compile", "<input>:1:7"}},
		"unknown variable": {`[{"id":"a","services":{"taxonomy_term":"cooling-rooms"},"rule":"income < 100","explanation":"x"}]`,
			[]string{"undeclared reference to 'income'", "1:1"}},
		"not a bool": {`[{"id":"a","services":{"taxonomy_term":"cooling-rooms"},"rule":"age + 1","explanation":"x"}]`,
			[]string{"yields int, want bool"}},
		"unknown term": {`[{"id":"a","services":{"taxonomy_term":"pony-rides"},"rule":"true","explanation":"x"}]`,
			[]string{`"pony-rides" is not a term`}},
		"no explanation, no services": {`[{"id":"a","rule":"true"}]`,
			[]string{"explanation is required", "services needs"}},
		"bad id":        {`[{"id":"A B","services":{"taxonomy_term":"cooling-rooms"},"rule":"true","explanation":"x"}]`, []string{"id must be"}},
		"unknown field": {`[{"id":"a","rules":"true"}]`, []string{"unknown field"}},
		"yaml":          {"- id: a\n  services: {taxonomy_term: cooling-rooms}\n  rule: 'age >'\n  explanation: x\n", []string{"does not compile"}},
	} {
		_, err := eligibility.LoadRules(eligibility.Source{Name: "override.yaml", Data: []byte(tc.doc)})
		require.ErrorIs(t, err, eligibility.ErrInvalidRules, name)
		for _, w := range tc.want {
			require.ErrorContains(t, err, w, name)
		}
		require.ErrorContains(t, err, "override.yaml", name)
	}
}

func TestLoadRulesOverrides(t *testing.T) {
	t.Parallel()
	base := eligibility.Source{Name: "base.json", Data: []byte(`[
		{"id":"cooling-rooms","services":{"taxonomy_term":"cooling-rooms"},"rule":"age >= 60","explanation":"Старше 60"},
		{"id":"legal","services":{"taxonomy_term":"legal-help"},"rule":"low_income","explanation":"Малоимущие"}]`)}
	over := eligibility.Source{Name: "city.yaml", Data: []byte(`
- id: cooling-rooms
  services: {taxonomy_term: cooling-rooms}
  rule: age >= 65 || disabled
  explanation: 65 лет и старше или инвалидность
- id: legal
  disabled: true
- id: own-service
  services: {service_ids: [5d1f7a4e-0000-5000-8000-000000000001]}
  rule: okrug == 'ЮВАО'
  explanation: Только жители ЮВАО
`)}
	rules, err := eligibility.LoadRules(base, over)
	require.NoError(t, err)
	var ids []string
	for _, r := range rules.List() {
		ids = append(ids, r.ID)
	}
	require.Equal(t, []string{"cooling-rooms", "own-service"}, ids)
	r, _ := rules.Get("cooling-rooms")
	require.Equal(t, "age >= 65 || disabled", r.Expression)
	own, _ := rules.Get("own-service")
	require.True(t, own.Governs("5d1f7a4e-0000-5000-8000-000000000001", nil, ""))
}

func residentDoc(i int, birth string, disabledChildren int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"birth_date":%q,"registered_since":"2001-01-01","disability_group":"none","pensioner":false,
		"low_income":false,"large_family":false,"address":{"address_1":"ул. Братиславская, д. 1","city":"Москва","okrug":"ЮВАО","district":"Марьино"},
		"household":{"members":3,"children_under_18":1,"children_with_disabilities":%d}}`, pseudonymOf(i), birth, disabledChildren))
}

func TestDecisionsFollowFactsRulesAndDates(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, eligibility.Migrations())
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	clock := eligibility.WithClock(func() time.Time { return now })
	store := eligibility.NewStore(db.Pool, eligibility.WithRules(rules), clock)
	b := testBundle{db: db, store: store}
	st, err := store.Refresh(ctx, nil) // at start: every rule is new
	require.NoError(t, err)
	require.Len(t, st.Rules, len(rules.List()))
	require.Zero(t, st.Residents)

	rec := func(i int, birth string, dc int) eligibility.Record {
		return eligibility.Record{Source: "residents", Pseudonym: pseudonymOf(i), Op: eligibility.OpUpsert, Facts: residentDoc(i, birth, dc)}
	}
	require.Equal(t, 2, b.apply(t, rec(1, "1965-06-02", 0), rec(2, "1980-01-01", 1)))
	count := func(rule string) int64 {
		n, err := store.EligibleCount(ctx, rule)
		require.NoError(t, err)
		return n
	}
	require.EqualValues(t, 1, count("respite-care"))
	require.EqualValues(t, 0, count("cooling-rooms"))

	// Facts change in the resolve transaction: decisions with them.
	b.apply(t, rec(2, "1980-01-01", 0))
	require.EqualValues(t, 0, count("respite-care"))
	b.apply(t, rec(1, "1965-06-02", 2))
	require.EqualValues(t, 1, count("respite-care"))

	// The next day resident 1 turns 60: Eligibility sees it at once, Refresh writes it.
	now = now.Add(24 * time.Hour)
	_, decisions, err := store.Eligibility(ctx, pseudonymOf(1))
	require.NoError(t, err)
	byID := map[string]bool{}
	for _, d := range decisions {
		byID[d.Rule.ID] = d.Eligible
	}
	require.True(t, byID["cooling-rooms"])
	require.True(t, byID["respite-care"])
	st, err = store.Refresh(ctx, nil)
	require.NoError(t, err)
	require.Contains(t, st.Rules, "cooling-rooms")
	require.NotContains(t, st.Rules, "respite-care", "it does not read the date")
	require.EqualValues(t, 2, st.Residents)
	require.EqualValues(t, 1, count("cooling-rooms"))

	// A refresh with nothing changed does nothing.
	st, err = store.Refresh(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, st.Rules)

	// A changed rule is recomputed for everyone; a removed one loses its decisions.
	changed, err := eligibility.LoadRules(eligibility.Source{Name: "x.json", Data: []byte(
		`[{"id":"cooling-rooms","services":{"taxonomy_term":"cooling-rooms"},"rule":"okrug == 'ЮВАО'","explanation":"ЮВАО"}]`)})
	require.NoError(t, err)
	store2 := eligibility.NewStore(db.Pool, eligibility.WithRules(changed), clock)
	st, err = store2.Refresh(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"cooling-rooms"}, st.Rules)
	require.EqualValues(t, 2, st.Residents)
	require.Contains(t, st.Removed, "respite-care")
	require.EqualValues(t, 2, count("cooling-rooms"))
	require.EqualValues(t, 0, count("respite-care"))

	// Deleting a resident deletes its decisions.
	b.apply(t, eligibility.Record{Source: "residents", Pseudonym: pseudonymOf(1), Op: eligibility.OpDelete})
	require.EqualValues(t, 1, count("cooling-rooms"))
}

func TestMigrationCarriesDecisionsOver(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, eligibility.Migrations())
	ctx := context.Background()
	require.NoError(t, store.MigrateDown(ctx, db.Pool, eligibility.Migrations(), 2))
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// Before: decisions in their own table. Resident 1 has one for every rule (and one claims what
	// its facts do not say, so reading it proves it was carried over); resident 2 misses one.
	for i := 1; i <= 2; i++ {
		_, err := db.Pool.Exec(ctx, `INSERT INTO eligibility_residents (pseudonym, source, facts, content_hash, seen_at, updated_at)
			VALUES ($1, 'residents', $2, 'h', now(), now())`, pseudonymOf(i), residentDoc(i, "1980-01-01", 0))
		require.NoError(t, err)
	}
	for k, r := range rules.List() {
		_, err := db.Pool.Exec(ctx, `INSERT INTO eligibility_rule_versions (rule_id, hash, computed_on) VALUES ($1, $2, $3)`, r.ID, r.Hash(), day)
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, `INSERT INTO eligibility_decisions (pseudonym, rule_id, eligible, computed_on) VALUES ($1, $2, $3, $4)`,
			pseudonymOf(1), r.ID, r.ID == "respite-care", day)
		require.NoError(t, err)
		if k > 0 {
			_, err = db.Pool.Exec(ctx, `INSERT INTO eligibility_decisions (pseudonym, rule_id, eligible, computed_on) VALUES ($1, $2, false, $3)`,
				pseudonymOf(2), r.ID, day)
			require.NoError(t, err)
		}
	}
	require.NoError(t, store.Migrate(ctx, db.Pool, eligibility.Migrations()))

	s := eligibility.NewStore(db.Pool, eligibility.WithRules(rules), eligibility.WithClock(func() time.Time { return day.Add(time.Hour) }))
	_, decisions, err := s.Eligibility(ctx, pseudonymOf(1))
	require.NoError(t, err)
	for _, d := range decisions {
		require.Equal(t, d.Rule.ID == "respite-care", d.Eligible, d.Rule.ID)
		require.Equal(t, day, d.ComputedOn, d.Rule.ID)
	}
	n, err := s.EligibleCount(ctx, "respite-care")
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	st, err := s.Refresh(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, st.Rules, "the versions still hold")
	require.EqualValues(t, 1, st.Residents, "only resident 2, whose decisions were incomplete")

	// And back: every decided resident gets a row per rule.
	require.NoError(t, store.MigrateDown(ctx, db.Pool, eligibility.Migrations(), 2))
	var rows, eligible int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE eligible AND rule_id = 'respite-care' AND pseudonym = $1)
		FROM eligibility_decisions`, pseudonymOf(1)).Scan(&rows, &eligible))
	require.Equal(t, 2*len(rules.List()), rows)
	require.Equal(t, 1, eligible)
}

func TestDecisionsOfOtherRulesAreNotRead(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, eligibility.Migrations())
	ctx := context.Background()
	now := func() time.Time { return time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC) }
	rules, err := eligibility.DefaultRules()
	require.NoError(t, err)
	// Written by a store without rules: undecided, yet answered from the facts.
	plain := testBundle{db: db, store: eligibility.NewStore(db.Pool, eligibility.WithClock(now))}
	require.Equal(t, 1, plain.apply(t, eligibility.Record{Source: "residents", Pseudonym: pseudonymOf(1), Op: eligibility.OpUpsert,
		Facts: residentDoc(1, "1980-01-01", 1)}))
	s := eligibility.NewStore(db.Pool, eligibility.WithRules(rules), eligibility.WithClock(now))
	eligible := func(s *eligibility.Store, rule string) bool {
		_, ds, err := s.Eligibility(ctx, pseudonymOf(1))
		require.NoError(t, err)
		for _, d := range ds {
			if d.Rule.ID == rule {
				return d.Eligible
			}
		}
		t.Fatalf("no decision of %s", rule)
		return false
	}
	require.True(t, eligible(s, "respite-care"))
	n, err := s.EligibleCount(ctx, "respite-care")
	require.NoError(t, err)
	require.Zero(t, n, "nothing stored yet")
	st, err := s.Refresh(ctx, nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Residents)
	n, err = s.EligibleCount(ctx, "respite-care")
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// Rules changed and not refreshed yet: the stored decisions are not theirs.
	changed, err := eligibility.LoadRules(eligibility.Source{Name: "x.json", Data: []byte(
		`[{"id":"respite-care","services":{"taxonomy_term":"families-with-children"},"rule":"children_with_disabilities > 5","explanation":"x"}]`)})
	require.NoError(t, err)
	require.False(t, eligible(eligibility.NewStore(db.Pool, eligibility.WithRules(changed), eligibility.WithClock(now)), "respite-care"))
	require.True(t, eligible(s, "respite-care"))
}

func TestActivationMatchesVariables(t *testing.T) {
	t.Parallel()
	today := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f, err := eligibility.ParseFacts([]byte(`{"birth_date":"1960-02-03","registered_since":"2010-07-01","disability_group":"II","pensioner":true,
		"low_income":true,"large_family":true,"address":{"district":"Марьино","okrug":"ЮВАО"},
		"household":{"members":5,"children_under_18":3,"children_with_disabilities":1}}`))
	require.NoError(t, err)
	vars := f.Activation(today)
	require.Len(t, vars, len(eligibility.Variables))
	for _, v := range eligibility.Variables {
		// A rule that compares the variable with its value through the map and through the
		// store's own activation must agree: both decide true.
		lit, err := json.Marshal(vars[v.Name])
		require.NoError(t, err)
		rules, err := eligibility.LoadRules(eligibility.Source{Name: "t.json", Data: []byte(fmt.Sprintf(
			`[{"id":"t","services":{"taxonomy_term":"cooling-rooms"},"rule":%q,"explanation":"x"}]`, v.Name+" == "+string(lit)))})
		require.NoError(t, err, v.Name)
		r, _ := rules.Get("t")
		require.True(t, r.Eval(vars), v.Name)
		require.True(t, eligibility.DecideForTest(r, &f, today), v.Name)
	}
}
