package eligibility

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Decision is a rule's verdict on a resident.
type Decision struct {
	Rule       *Rule
	Eligible   bool
	ComputedOn time.Time // the day the verdict holds for
}

// today is the current date at midnight UTC, as PostgreSQL's date columns hold it.
func (s *Store) today() time.Time {
	y, m, d := s.now().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// decisionRows are the columns of a decision upsert, as arrays for unnest.
type decisionRows struct {
	pseudonyms, ruleIDs []string
	eligible            []bool
}

func (d *decisionRows) add(pseudonym string, facts []byte, rules []*Rule, today time.Time) {
	f, err := ParseFacts(facts)
	var vars map[string]any
	if err == nil {
		vars = f.Activation(today)
	}
	for _, r := range rules {
		// Facts Apply accepted are a JSON object; one that still does not parse decides "no".
		d.pseudonyms, d.ruleIDs, d.eligible = append(d.pseudonyms, pseudonym), append(d.ruleIDs, r.ID), append(d.eligible, err == nil && r.Eval(vars))
	}
}

func (d *decisionRows) write(ctx context.Context, tx pgx.Tx, today time.Time) error {
	if len(d.pseudonyms) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO eligibility_decisions AS d (pseudonym, rule_id, eligible, computed_on)
		SELECT u.pseudonym, u.rule_id, u.eligible, $4 FROM unnest($1::text[], $2::text[], $3::bool[]) AS u(pseudonym, rule_id, eligible)
		ON CONFLICT (pseudonym, rule_id) DO UPDATE SET eligible = EXCLUDED.eligible, computed_on = EXCLUDED.computed_on`,
		d.pseudonyms, d.ruleIDs, d.eligible, today)
	if err != nil {
		return fmt.Errorf("error writing %d eligibility decisions: %w", len(d.pseudonyms), err)
	}
	return nil
}

// decideChanged computes every rule for the residents Apply wrote.
func (s *Store) decideChanged(ctx context.Context, tx pgx.Tx, written []string, up *upserts) error {
	if s.rules == nil || len(written) == 0 || len(s.rules.list) == 0 {
		return nil
	}
	changed := make(map[string]bool, len(written))
	for _, p := range written {
		changed[p] = true
	}
	today := s.today()
	var d decisionRows
	for i, p := range up.pseudonyms {
		if changed[p] {
			d.add(p, []byte(up.facts[i]), s.rules.list, today)
		}
	}
	return d.write(ctx, tx, today)
}

// refreshBatch is how many residents Refresh decides per transaction.
const refreshBatch = 5000

// RefreshStats says what Refresh did.
type RefreshStats struct {
	Rules     []string // the rules recomputed for every resident
	Removed   []string // rules no longer loaded, whose decisions were deleted
	Residents int64    // residents decided
}

// Refresh brings the decisions in line with the rules: it recomputes, for every resident, the rules
// that are new or changed since their decisions were computed and the rules reading the date whose
// decisions are from an earlier day, and deletes the decisions of rules no longer loaded. Call it
// at start (after loading the rules) and daily; when nothing changed it costs one query.
func (s *Store) Refresh(ctx context.Context, log *slog.Logger) (RefreshStats, error) {
	var st RefreshStats
	if s.rules == nil {
		return st, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	today := s.today()
	type version struct {
		hash string
		on   time.Time
	}
	stored := map[string]version{}
	rows, err := s.pool.Query(ctx, `SELECT rule_id, hash, computed_on FROM eligibility_rule_versions`)
	if err != nil {
		return st, fmt.Errorf("error reading eligibility rule versions: %w", err)
	}
	for rows.Next() {
		var id string
		var v version
		if err := rows.Scan(&id, &v.hash, &v.on); err != nil {
			return st, fmt.Errorf("error reading eligibility rule versions: %w", err)
		}
		stored[id] = v
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("error reading eligibility rule versions: %w", err)
	}
	var stale []*Rule
	for _, r := range s.rules.list {
		v, ok := stored[r.ID]
		if !ok || v.hash != r.hash || (r.datedFacts && v.on.Before(today)) {
			stale = append(stale, r)
			st.Rules = append(st.Rules, r.ID)
		}
		delete(stored, r.ID)
	}
	for id := range stored {
		st.Removed = append(st.Removed, id)
	}
	if len(st.Removed) > 0 {
		if _, err := s.pool.Exec(ctx, `DELETE FROM eligibility_decisions WHERE rule_id = ANY($1)`, st.Removed); err != nil {
			return st, fmt.Errorf("error deleting decisions of removed rules: %w", err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM eligibility_rule_versions WHERE rule_id = ANY($1)`, st.Removed); err != nil {
			return st, fmt.Errorf("error deleting removed rules: %w", err)
		}
	}
	if len(stale) == 0 {
		return st, nil
	}
	start := time.Now()
	after := ""
	for {
		n, last, err := s.refreshBatch(ctx, stale, after, today)
		if err != nil {
			return st, err
		}
		st.Residents += int64(n)
		if n < refreshBatch {
			break
		}
		after = last
	}
	// Versions last: a refresh cut short is redone in full at the next start.
	for _, r := range stale {
		if _, err := s.pool.Exec(ctx, `INSERT INTO eligibility_rule_versions (rule_id, hash, computed_on) VALUES ($1, $2, $3)
			ON CONFLICT (rule_id) DO UPDATE SET hash = EXCLUDED.hash, computed_on = EXCLUDED.computed_on`, r.ID, r.hash, today); err != nil {
			return st, fmt.Errorf("error recording rule %s: %w", r.ID, err)
		}
	}
	log.InfoContext(ctx, "eligibility recomputed", slog.Any("rules", st.Rules), slog.Int64("residents", st.Residents),
		slog.Duration("took", time.Since(start)))
	return st, nil
}

// refreshBatch decides the rules for the residents after the pseudonym, in one transaction.
func (s *Store) refreshBatch(ctx context.Context, rules []*Rule, after string, today time.Time) (int, string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("error starting an eligibility refresh: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT pseudonym, facts::text FROM eligibility_residents WHERE pseudonym > $1 ORDER BY pseudonym LIMIT $2`,
		after, refreshBatch)
	if err != nil {
		return 0, "", fmt.Errorf("error reading residents to decide: %w", err)
	}
	var d decisionRows
	n, last := 0, ""
	for rows.Next() {
		var facts string
		if err := rows.Scan(&last, &facts); err != nil {
			return 0, "", fmt.Errorf("error reading residents to decide: %w", err)
		}
		d.add(last, []byte(facts), rules, today)
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("error reading residents to decide: %w", err)
	}
	if err := d.write(ctx, tx, today); err != nil {
		return 0, "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, "", fmt.Errorf("error committing eligibility decisions: %w", err)
	}
	return n, last, nil
}

// Eligibility returns a resident and the verdict of every loaded rule, sorted by rule id. Stored
// decisions are used when current; a decision that is missing (a rule loaded since) or stale (a
// rule reading the date, decided on an earlier day) is computed from the facts on the spot.
func (s *Store) Eligibility(ctx context.Context, pseudonym string) (Resident, []Decision, error) {
	r, err := s.Get(ctx, pseudonym)
	if err != nil {
		return Resident{}, nil, err
	}
	if s.rules == nil {
		return r, nil, nil
	}
	type stored struct {
		eligible bool
		on       time.Time
	}
	have := map[string]stored{}
	rows, err := s.pool.Query(ctx, `SELECT rule_id, eligible, computed_on FROM eligibility_decisions WHERE pseudonym = $1`, pseudonym)
	if err != nil {
		return Resident{}, nil, fmt.Errorf("error reading decisions of %s: %w", pseudonym, err)
	}
	for rows.Next() {
		var id string
		var d stored
		if err := rows.Scan(&id, &d.eligible, &d.on); err != nil {
			return Resident{}, nil, fmt.Errorf("error reading decisions of %s: %w", pseudonym, err)
		}
		have[id] = d
	}
	if err := rows.Err(); err != nil {
		return Resident{}, nil, fmt.Errorf("error reading decisions of %s: %w", pseudonym, err)
	}
	today := s.today()
	var vars map[string]any
	out := make([]Decision, 0, len(s.rules.list))
	for _, rule := range s.rules.list {
		d, ok := have[rule.ID]
		if ok && (!rule.datedFacts || !d.on.Before(today)) {
			out = append(out, Decision{Rule: rule, Eligible: d.eligible, ComputedOn: d.on})
			continue
		}
		if vars == nil {
			f, err := ParseFacts(r.Facts)
			if err != nil {
				return Resident{}, nil, err
			}
			vars = f.Activation(today)
		}
		out = append(out, Decision{Rule: rule, Eligible: rule.Eval(vars), ComputedOn: today})
	}
	return r, out, nil
}

// Rules returns the rules the store decides by (nil without).
func (s *Store) Rules() *Rules { return s.rules }

// EligibleCount returns how many residents a rule's stored decisions find eligible.
func (s *Store) EligibleCount(ctx context.Context, ruleID string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM eligibility_decisions WHERE rule_id = $1 AND eligible`, ruleID).Scan(&n)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("error counting eligible residents of %s: %w", ruleID, err)
	}
	return n, nil
}
