package eligibility

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/event"
	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "eligibility", FS: sub}
}

// Ops of a record.
const (
	OpUpsert = event.OpUpsert
	OpDelete = event.OpDelete
)

// Record is a resident record as the resolve stage hands it over.
type Record struct {
	Source      string          // the source name, e.g. "residents"
	Pseudonym   string          // the resident's pseudonym (the record's external id)
	Op          string          // OpUpsert or OpDelete
	ContentHash string          // sha256 hex of the canonical JSON of Facts; computed when empty
	Facts       json.RawMessage // the resident document; nil for delete
	SeenAt      time.Time
}

// Resident is a stored resident.
type Resident struct {
	Pseudonym   string
	Source      string
	Facts       json.RawMessage
	ContentHash string
	SeenAt      time.Time
	UpdatedAt   time.Time
}

// Store reads and writes the eligibility store.
type Store struct {
	pool  *pgxpool.Pool
	rules *Rules           // nil: no decisions are computed
	now   func() time.Time // the clock of "today" for ages
}

// Option configures a Store.
type Option func(*Store)

// WithRules makes Apply compute the eligibility of the residents it changes under rules, and
// Refresh and Eligibility use them.
func WithRules(rules *Rules) Option { return func(s *Store) { s.rules = rules } }

// WithClock sets the clock that says what day it is (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// NewStore returns the store on pool.
func NewStore(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Apply applies a batch of records inside the caller's transaction and returns how many residents
// it created, changed or removed. An upsert whose content hash (and source) equals the stored one
// changes nothing, so replaying a topic leaves the store as it was. A delete removes the resident
// only if the same source wrote it. When one batch holds several records of a resident, the last
// one wins, as Kafka delivers one key's records in order.
//
// With rules, the residents it writes are decided in the same statement, in their own rows.
//
// It costs at most two statements per batch, whatever its size: one upsert over unnest'ed arrays
// and one delete. A record Apply refuses makes it fail with ErrInvalidRecord before anything is
// written.
func (s *Store) Apply(ctx context.Context, tx pgx.Tx, recs []Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	var up upserts
	var decide *decider
	var eligible []string // per record: the text[] literal of its decisions
	if s.rules != nil {
		today := s.today()
		up.decidedOn, up.decidedUnder = today, s.rules.digest
		decide = newDecider(s.rules.list, today)
		eligible = make([]string, len(recs))
	}
	last := make(map[string]int, len(recs))
	for i := range recs {
		lit, err := checkRecord(&recs[i], decide)
		if err != nil {
			return 0, err
		}
		if eligible != nil {
			eligible[i] = lit
		}
		last[recs[i].Pseudonym] = i
	}
	var delPseudonyms, delSources []string
	for i := range recs {
		r := &recs[i]
		if last[r.Pseudonym] != i {
			continue
		}
		if r.Op == OpDelete {
			delPseudonyms = append(delPseudonyms, r.Pseudonym)
			delSources = append(delSources, r.Source)
			continue
		}
		up.add(r)
		if eligible != nil {
			// The decisions go in the same statement as the facts: one row write per resident. A
			// replay is decided too, and then skipped by the upsert with its facts.
			up.eligible = append(up.eligible, eligible[i])
		}
	}
	changed := 0
	if len(up.pseudonyms) > 0 {
		n, err := up.write(ctx, tx)
		if err != nil {
			return 0, err
		}
		changed += n
	}
	if len(delPseudonyms) > 0 {
		tag, err := tx.Exec(ctx, `
			DELETE FROM eligibility_residents AS r
			USING unnest($1::text[], $2::text[]) AS d(pseudonym, source)
			WHERE r.pseudonym = d.pseudonym AND r.source = d.source`,
			delPseudonyms, delSources)
		if err != nil {
			return 0, fmt.Errorf("error deleting %d residents: %w", len(delPseudonyms), err)
		}
		changed += int(tag.RowsAffected())
	}
	return changed, nil
}

// upserts are the columns of the upsert, as arrays for unnest.
type upserts struct {
	pseudonyms, sources, facts, hashes []string
	seenAt                             []time.Time
	// The decisions: eligible holds a text[] literal per resident; all nil without rules, which
	// leaves the residents undecided.
	eligible     []string
	decidedOn    any
	decidedUnder any
}

// write upserts the residents and their decisions, skipping those whose content hash (and
// source) the store holds already, and returns how many it wrote.
func (u *upserts) write(ctx context.Context, tx pgx.Tx) (int, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO eligibility_residents AS r
			(pseudonym, source, facts, content_hash, seen_at, updated_at, eligible_rules, decided_on, decided_under)
		SELECT u.pseudonym, u.source, u.facts::json, u.content_hash, u.seen_at, now(), u.eligible::text[], $7::date, $8::bigint
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
			AS u(pseudonym, source, facts, content_hash, seen_at, eligible)
		ON CONFLICT (pseudonym) DO UPDATE SET
			source = EXCLUDED.source, facts = EXCLUDED.facts, content_hash = EXCLUDED.content_hash,
			seen_at = EXCLUDED.seen_at, updated_at = EXCLUDED.updated_at,
			eligible_rules = EXCLUDED.eligible_rules, decided_on = EXCLUDED.decided_on, decided_under = EXCLUDED.decided_under
		WHERE (r.content_hash, r.source) IS DISTINCT FROM (EXCLUDED.content_hash, EXCLUDED.source)`,
		u.pseudonyms, u.sources, u.facts, u.hashes, u.seenAt, u.eligible, u.decidedOn, u.decidedUnder)
	if err != nil {
		return 0, fmt.Errorf("error upserting %d residents: %w", len(u.pseudonyms), err)
	}
	return int(tag.RowsAffected()), nil
}

func (u *upserts) add(r *Record) {
	u.pseudonyms = append(u.pseudonyms, r.Pseudonym)
	u.sources = append(u.sources, r.Source)
	u.facts = append(u.facts, string(r.Facts))
	u.hashes = append(u.hashes, r.ContentHash)
	u.seenAt = append(u.seenAt, r.SeenAt)
}

// checkRecord refuses what the table would refuse, with a reason a person can act on, and fills
// in the defaults. With a decider, it decides an upsert's facts on the way, and returns the
// decisions' text[] literal: facts that parse need no other check that they are JSON.
func checkRecord(r *Record, d *decider) (string, error) {
	switch {
	case r.Source == "":
		return "", fmt.Errorf("%w: a record has no source", ErrInvalidRecord)
	case !isPseudonym(r.Pseudonym):
		// Never echo the value: a raw national id sent by mistake must not reach logs or dlq reasons.
		return "", fmt.Errorf("%w: a record of %s has an external id that is not a pseudonym (64 lowercase hex digits, %d characters given)",
			ErrInvalidRecord, r.Source, len(r.Pseudonym))
	}
	if r.SeenAt.IsZero() {
		r.SeenAt = time.Now()
	}
	switch r.Op {
	case OpDelete:
		return "", nil
	case OpUpsert, "":
		r.Op = OpUpsert
	default:
		return "", fmt.Errorf("%w: resident %s of %s: unknown op %q", ErrInvalidRecord, r.Pseudonym, r.Source, r.Op)
	}
	facts := bytes.TrimSpace(r.Facts)
	lit, parsed := "", false
	if d != nil && len(facts) > 0 && facts[0] == '{' {
		lit, parsed = d.decide(facts)
	}
	if len(facts) == 0 || facts[0] != '{' || !parsed && !json.Valid(facts) {
		return "", fmt.Errorf("%w: resident %s of %s: the facts are not a JSON object", ErrInvalidRecord, r.Pseudonym, r.Source)
	}
	if r.ContentHash == "" {
		h, err := event.ContentHash(facts)
		if err != nil {
			return "", fmt.Errorf("%w: resident %s of %s: %w", ErrInvalidRecord, r.Pseudonym, r.Source, err)
		}
		r.ContentHash = h
	}
	return lit, nil
}

func isPseudonym(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Count returns how many residents the store holds.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM eligibility_residents`).Scan(&n); err != nil {
		return 0, fmt.Errorf("error counting residents: %w", err)
	}
	return n, nil
}

// Get returns the resident with the pseudonym, or ErrNotFound.
func (s *Store) Get(ctx context.Context, pseudonym string) (Resident, error) {
	r, _, err := s.get(ctx, pseudonym)
	return r, err
}

// get returns the resident with the pseudonym and its stored decisions, in one query.
func (s *Store) get(ctx context.Context, pseudonym string) (Resident, decisions, error) {
	r := Resident{Pseudonym: pseudonym}
	var d decisions
	var facts []byte
	err := s.pool.QueryRow(ctx, `
		SELECT source, facts, content_hash, seen_at, updated_at, eligible_rules, decided_on, decided_under
		FROM eligibility_residents WHERE pseudonym = $1`,
		pseudonym).Scan(&r.Source, &facts, &r.ContentHash, &r.SeenAt, &r.UpdatedAt, &d.eligible, &d.on, &d.under)
	if errors.Is(err, pgx.ErrNoRows) {
		return Resident{}, decisions{}, fmt.Errorf("%w: %s", ErrNotFound, pseudonym)
	}
	if err != nil {
		return Resident{}, decisions{}, fmt.Errorf("error reading resident %s: %w", pseudonym, err)
	}
	r.Facts = facts
	return r, d, nil
}
