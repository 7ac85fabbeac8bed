package eligibility

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

// decider decides residents under rules as of a day. A resident's decisions are stored as the
// text[] of the rules it is eligible under, which the upsert casts from its literal; decider
// spells each distinct set once, so a batch allocates per set of rules, not per resident.
type decider struct {
	rules    []*Rule
	today    time.Time
	literals map[uint64]string
}

func newDecider(rules []*Rule, today time.Time) *decider {
	return &decider{rules: rules, today: today, literals: map[uint64]string{}}
}

// decide returns the text[] literal of the rules the facts are eligible under, and whether they
// parsed (then they are JSON). Facts that do not parse as facts (a value of the wrong type) are
// eligible under none.
func (d *decider) decide(facts []byte) (string, bool) {
	f, err := ParseFacts(facts)
	if err != nil {
		return "{}", false
	}
	a := &activation{f: &f, today: d.today}
	if len(d.rules) > 64 {
		var ids []string
		for _, r := range d.rules {
			if r.eval(a) {
				ids = append(ids, r.ID)
			}
		}
		return "{" + strings.Join(ids, ",") + "}", true
	}
	var set uint64
	for i, r := range d.rules {
		if r.eval(a) {
			set |= 1 << i
		}
	}
	if lit, ok := d.literals[set]; ok {
		return lit, true
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, r := range d.rules {
		if set&(1<<i) != 0 {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			// Rule ids are [a-z0-9._-]: nothing in them needs quoting in an array literal.
			b.WriteString(r.ID)
		}
	}
	b.WriteByte('}')
	d.literals[set] = b.String()
	return d.literals[set], true
}

// decisions are what the store holds about a resident's eligibility.
type decisions struct {
	eligible []string   // ids of the rules the resident is eligible under
	on       *time.Time // the day they were decided; nil: never decided
	under    *int64     // the digest of the rules they were decided under
}

// current reports whether the stored decision of the rule holds today under rules: decided under
// the same rules and, for a rule reading the date, today.
func (d decisions) current(rules *Rules, rule *Rule, today time.Time) bool {
	return d.under != nil && *d.under == rules.digest && d.on != nil && (!rule.datedFacts || !d.on.Before(today))
}

// refreshBatch is how many residents Refresh decides per transaction.
const refreshBatch = 5000

// RefreshStats says what Refresh did.
type RefreshStats struct {
	// Rules are the rules whose stored decisions were out of date (new, changed, or reading the
	// date and decided on an earlier day); every resident was decided again under all rules.
	Rules     []string
	Removed   []string // rules no longer loaded, whose decisions were dropped
	Residents int64    // residents decided
}

// Refresh brings the decisions in line with the rules: when a rule is new or changed since the
// decisions were computed, or reads the date and was decided on an earlier day, or was removed,
// it decides every resident again; otherwise it decides only the residents nobody decided yet
// (written without rules, or whose old decisions an upgrade could not carry over). Call it at
// start (after loading the rules) and daily; when nothing changed it costs two index probes.
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
	for _, r := range s.rules.list {
		v, ok := stored[r.ID]
		if !ok || v.hash != r.hash || (r.datedFacts && v.on.Before(today)) {
			st.Rules = append(st.Rules, r.ID)
		}
		delete(stored, r.ID)
	}
	for id := range stored {
		st.Removed = append(st.Removed, id)
	}
	slices.Sort(st.Removed)
	start := time.Now()
	all := len(st.Rules) > 0 || len(st.Removed) > 0
	after := ""
	for {
		n, last, err := s.refreshBatch(ctx, all, after, today)
		if err != nil {
			return st, err
		}
		st.Residents += int64(n)
		if n < refreshBatch {
			break
		}
		after = last
	}
	if !all {
		if st.Residents > 0 {
			log.InfoContext(ctx, "undecided residents decided", slog.Int64("residents", st.Residents), slog.Duration("took", time.Since(start)))
		}
		return st, nil
	}
	// Versions last: a refresh cut short is redone in full at the next start.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM eligibility_rule_versions WHERE rule_id = ANY($1)`, st.Removed); err != nil {
			return fmt.Errorf("error deleting removed rules: %w", err)
		}
		for _, r := range s.rules.list {
			if _, err := tx.Exec(ctx, `INSERT INTO eligibility_rule_versions (rule_id, hash, computed_on) VALUES ($1, $2, $3)
				ON CONFLICT (rule_id) DO UPDATE SET hash = EXCLUDED.hash, computed_on = EXCLUDED.computed_on`, r.ID, r.hash, today); err != nil {
				return fmt.Errorf("error recording rule %s: %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	log.InfoContext(ctx, "eligibility recomputed", slog.Any("rules", st.Rules), slog.Any("removed", st.Removed),
		slog.Int64("residents", st.Residents), slog.Duration("took", time.Since(start)))
	return st, nil
}

// refreshBatch decides, in one transaction, the residents after the pseudonym: all of them, or
// only the undecided ones. A resident whose facts changed since it was read keeps what Apply
// decided with them.
func (s *Store) refreshBatch(ctx context.Context, all bool, after string, today time.Time) (int, string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("error starting an eligibility refresh: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	query := `SELECT pseudonym, facts::text, content_hash FROM eligibility_residents WHERE pseudonym > $1 ORDER BY pseudonym LIMIT $2`
	if !all {
		query = `SELECT pseudonym, facts::text, content_hash FROM eligibility_residents
			WHERE decided_under IS NULL AND pseudonym > $1 ORDER BY pseudonym LIMIT $2`
	}
	rows, err := tx.Query(ctx, query, after, refreshBatch)
	if err != nil {
		return 0, "", fmt.Errorf("error reading residents to decide: %w", err)
	}
	d := newDecider(s.rules.list, today)
	var pseudonyms, hashes, eligible []string
	var facts []byte
	last := ""
	for rows.Next() {
		var hash string
		if err := rows.Scan(&last, &facts, &hash); err != nil {
			return 0, "", fmt.Errorf("error reading residents to decide: %w", err)
		}
		lit, _ := d.decide(facts)
		pseudonyms, hashes, eligible = append(pseudonyms, last), append(hashes, hash), append(eligible, lit)
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("error reading residents to decide: %w", err)
	}
	if len(pseudonyms) == 0 {
		return 0, "", nil
	}
	_, err = tx.Exec(ctx, `
		UPDATE eligibility_residents AS r SET eligible_rules = u.eligible::text[], decided_on = $4, decided_under = $5
		FROM unnest($1::text[], $2::text[], $3::text[]) AS u(pseudonym, content_hash, eligible)
		WHERE r.pseudonym = u.pseudonym AND r.content_hash = u.content_hash`,
		pseudonyms, hashes, eligible, today, s.rules.digest)
	if err != nil {
		return 0, "", fmt.Errorf("error writing the decisions of %d residents: %w", len(pseudonyms), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, "", fmt.Errorf("error committing eligibility decisions: %w", err)
	}
	return len(pseudonyms), last, nil
}

// Eligibility returns a resident and the verdict of every loaded rule, sorted by rule id. Stored
// decisions are used when current; one decided under other rules, or stale (a rule reading the
// date, decided on an earlier day), is computed from the facts on the spot.
func (s *Store) Eligibility(ctx context.Context, pseudonym string) (Resident, []Decision, error) {
	r, stored, err := s.get(ctx, pseudonym)
	if err != nil {
		return Resident{}, nil, err
	}
	if s.rules == nil {
		return r, nil, nil
	}
	today := s.today()
	var a *activation
	out := make([]Decision, 0, len(s.rules.list))
	for _, rule := range s.rules.list {
		if stored.current(s.rules, rule, today) {
			out = append(out, Decision{Rule: rule, Eligible: slices.Contains(stored.eligible, rule.ID), ComputedOn: *stored.on})
			continue
		}
		if a == nil {
			f, err := ParseFacts(r.Facts)
			if err != nil {
				return Resident{}, nil, err
			}
			a = &activation{f: &f, today: today}
		}
		out = append(out, Decision{Rule: rule, Eligible: rule.eval(a), ComputedOn: today})
	}
	return r, out, nil
}

// Rules returns the rules the store decides by (nil without).
func (s *Store) Rules() *Rules { return s.rules }

// EligibleCount returns how many residents a rule's stored decisions find eligible. It reads the
// whole table: it serves tests and operators, not requests.
func (s *Store) EligibleCount(ctx context.Context, ruleID string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM eligibility_residents WHERE eligible_rules @> ARRAY[$1::text]`, ruleID).Scan(&n)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("error counting eligible residents of %s: %w", ruleID, err)
	}
	return n, nil
}
