package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ResolvedIDs returns the canonical id of every member, keyed "<entity type>/<source>/<local
// id>", and of every organization record (a grant list's row), keyed
// "organization/<source>/<record id>": what entity resolution made of each source-level entity,
// for measuring it against a ground truth.
func (s *Store) ResolvedIDs(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT entity_type, source, local_id, canonical_id FROM catalog_members
		UNION ALL
		SELECT 'organization', source, external_id, organization_id FROM catalog_source_records
		WHERE entity_type = 'organization'`)
	if err != nil {
		return nil, fmt.Errorf("error reading resolved ids: %w", err)
	}
	out := map[string]string{}
	var typ, source, local string
	var id uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&typ, &source, &local, (*[16]byte)(&id)}, func() error {
		out[typ+"/"+source+"/"+local] = id.String()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("error reading resolved ids: %w", err)
	}
	return out, nil
}

// CountReview returns the number of open review items.
func (s *Store) CountReview(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM catalog_review WHERE status = 'open'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("error counting review items: %w", err)
	}
	return n, nil
}

// Review statuses.
const (
	ReviewOpen      = "open"
	ReviewMerged    = "merged"
	ReviewSplit     = "split"
	ReviewDismissed = "dismissed"
)

// ReviewSide is one side of a review item: a source-level entity (member), as its source gave
// it, and the canonical entity it belongs to now.
type ReviewSide struct {
	MemberID    string          `json:"member_id"`
	Source      string          `json:"source"`
	LocalID     string          `json:"local_id"`
	CanonicalID string          `json:"canonical_id"`
	Doc         json.RawMessage `json:"doc"`
}

// ReviewItem is a pair resolution was unsure of: its score fell between the thresholds. Matched
// lists the features that agreed ("name:0.83", "phone", ...).
type ReviewItem struct {
	ID         int64      `json:"id"`
	EntityType string     `json:"entity_type"`
	Status     string     `json:"status"`
	Score      float64    `json:"score"`
	Matched    []string   `json:"matched"`
	CreatedAt  time.Time  `json:"created_at"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	Member     ReviewSide `json:"member"`
	Candidate  ReviewSide `json:"candidate"`
}

const reviewSQL = `
	SELECT r.id, r.entity_type, r.status, r.score, r.matched, r.created_at, r.decided_at, r.decided_by,
	       m.member_id, m.source, m.local_id, m.canonical_id, m.doc,
	       c.member_id, c.source, c.local_id, c.canonical_id, c.doc
	FROM catalog_review r
	JOIN catalog_members m ON m.member_id = r.member_id
	JOIN catalog_members c ON c.member_id = r.candidate_id`

func scanReview(row pgx.Row) (ReviewItem, error) {
	var it ReviewItem
	var mid, mc, cid, cc uuid.UUID
	err := row.Scan(&it.ID, &it.EntityType, &it.Status, &it.Score, &it.Matched, &it.CreatedAt, &it.DecidedAt, &it.DecidedBy,
		(*[16]byte)(&mid), &it.Member.Source, &it.Member.LocalID, (*[16]byte)(&mc), &it.Member.Doc,
		(*[16]byte)(&cid), &it.Candidate.Source, &it.Candidate.LocalID, (*[16]byte)(&cc), &it.Candidate.Doc)
	it.Member.MemberID, it.Member.CanonicalID = mid.String(), mc.String()
	it.Candidate.MemberID, it.Candidate.CanonicalID = cid.String(), cc.String()
	if it.Matched == nil {
		it.Matched = []string{}
	}
	return it, err
}

// ListReview returns review items of a status ("" for every one), oldest first, and how many
// there are. Page starts at 1.
func (s *Store) ListReview(ctx context.Context, status string, page, perPage int) ([]ReviewItem, int, error) {
	page, perPage = normalizePaging(page, perPage)
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM catalog_review WHERE $1 = '' OR status = $1`, status).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("error counting review items: %w", err)
	}
	rows, err := s.pool.Query(ctx, reviewSQL+` WHERE $1 = '' OR r.status = $1 ORDER BY r.id LIMIT $2 OFFSET $3`,
		status, perPage, (page-1)*perPage)
	if err != nil {
		return nil, 0, fmt.Errorf("error listing review items: %w", err)
	}
	defer rows.Close()
	out := []ReviewItem{}
	for rows.Next() {
		it, err := scanReview(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("error listing review items: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("error listing review items: %w", err)
	}
	return out, total, nil
}

// GetReview returns a review item, or ErrNotFound.
func (s *Store) GetReview(ctx context.Context, id int64) (ReviewItem, error) {
	it, err := scanReview(s.pool.QueryRow(ctx, reviewSQL+` WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ReviewItem{}, fmt.Errorf("review item %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return ReviewItem{}, fmt.Errorf("error reading review item %d: %w", id, err)
	}
	return it, nil
}

// Review decisions.
const (
	DecideMerge   = "merge"   // the two are one: merge the member's canonical entity into the candidate's
	DecideSplit   = "split"   // the two are not one: take the member out if they were merged, keep them apart
	DecideDismiss = "dismiss" // the two are not one: keep them apart
)

// Decide applies a reviewer's decision on an open review item (or a split on a merged one) inside tx and returns the changes
// for the outbox. Every decision is remembered: the item keeps its status, and "split" and
// "dismiss" keep the pair apart (catalog_apart), so resolution never proposes it again.
func (s *Store) Decide(ctx context.Context, tx pgx.Tx, id int64, decision, by string) ([]Change, error) {
	var member, candidate uuid.UUID
	var status string
	err := tx.QueryRow(ctx, `SELECT member_id, candidate_id, status FROM catalog_review WHERE id = $1 FOR UPDATE`, id).
		Scan((*[16]byte)(&member), (*[16]byte)(&candidate), &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("review item %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("error reading review item %d: %w", id, err)
	}
	// An open item takes any decision; a merged one can still be split (an unmerge).
	if status != ReviewOpen && (status != ReviewMerged || decision != DecideSplit) {
		return nil, fmt.Errorf("%w: review item %d is %s already", ErrBadDecision, id, status)
	}
	now := time.Now().UTC()
	var chs []Change
	newStatus := ReviewDismissed
	switch decision {
	case DecideMerge:
		if chs, err = s.Merge(ctx, tx, candidate, member, by); err != nil {
			return nil, err
		}
		newStatus = ReviewMerged
	case DecideSplit, DecideDismiss:
		if decision == DecideSplit {
			newStatus = ReviewSplit
			mc, _, err := s.Lookup(ctx, tx, member)
			if err != nil {
				return nil, err
			}
			cc, _, err := s.Lookup(ctx, tx, candidate)
			if err != nil {
				return nil, err
			}
			if mc == cc {
				if chs, _, err = s.Split(ctx, tx, mc, []uuid.UUID{member}, by); err != nil {
					return nil, err
				}
			}
		}
		a, b := member, candidate
		if compareIDs(a, b) > 0 {
			a, b = b, a
		}
		if _, err := tx.Exec(ctx, `INSERT INTO catalog_apart (a, b, decided_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			[16]byte(a), [16]byte(b), now); err != nil {
			return nil, fmt.Errorf("error keeping %s and %s apart: %w", a, b, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown decision %q (merge, split or dismiss)", ErrBadDecision, decision)
	}
	if _, err := tx.Exec(ctx, `UPDATE catalog_review SET status = $2, decided_at = $3, decided_by = $4 WHERE id = $1`,
		id, newStatus, now, by); err != nil {
		return nil, fmt.Errorf("error deciding review item %d: %w", id, err)
	}
	return chs, nil
}
