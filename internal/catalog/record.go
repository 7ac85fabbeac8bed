package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RecordState is where one service source record stands in the catalog (for an NGO's view of
// its own listing).
type RecordState struct {
	// ContentHash is the hash of the record's version the catalog holds.
	ContentHash string
	// ServiceID is the canonical service the record's service belongs to, redirects followed;
	// MemberID the id its source alone would give it. They differ when resolution merged it into a
	// service another source lists.
	ServiceID, MemberID string
	// OrganizationID is the canonical organization of the record's organization (local id as
	// asked), redirects followed; "" when unknown. OrganizationMemberID as MemberID.
	OrganizationID, OrganizationMemberID string
	// InReview counts the open review items about the record's service or organization.
	InReview int
}

// Merged reports whether the record's service joined a canonical service of another's.
func (r RecordState) Merged() bool { return r.ServiceID != r.MemberID }

// OrganizationMerged reports whether the record's organization joined another's.
func (r RecordState) OrganizationMerged() bool {
	return r.OrganizationID != "" && r.OrganizationID != r.OrganizationMemberID
}

// RecordState returns where the service record source/externalID stands, its organization taken
// by the local id orgLocalID; ErrNotFound when the catalog holds no such record.
func (s *Store) RecordState(ctx context.Context, source, externalID, orgLocalID string) (RecordState, error) {
	svcMember := CanonicalID(EntityService, source, externalID)
	orgMember := CanonicalID(EntityOrganization, source, orgLocalID)
	var st RecordState
	var svc uuid.UUID
	var org pgtype.UUID
	err := s.pool.QueryRow(ctx, `
		SELECT r.content_hash,
		       coalesce((SELECT canonical_id FROM catalog_members WHERE member_id = $3), r.service_id),
		       (SELECT canonical_id FROM catalog_members WHERE member_id = $4),
		       (SELECT count(*) FROM catalog_review WHERE status = 'open' AND (member_id IN ($3, $4) OR candidate_id IN ($3, $4)))
		FROM catalog_source_records r
		WHERE r.source = $1 AND r.external_id = $2 AND r.entity_type = 'service'`,
		source, externalID, [16]byte(svcMember), [16]byte(orgMember)).
		Scan(&st.ContentHash, (*[16]byte)(&svc), &org, &st.InReview)
	if errors.Is(err, pgx.ErrNoRows) {
		return RecordState{}, fmt.Errorf("source record %s/%s: %w", source, externalID, ErrNotFound)
	}
	if err != nil {
		return RecordState{}, fmt.Errorf("error reading source record %s/%s: %w", source, externalID, err)
	}
	if svc, err = s.followRedirects(ctx, svc); err != nil {
		return RecordState{}, err
	}
	st.ServiceID, st.MemberID = svc.String(), svcMember.String()
	if org.Valid {
		canon, err := s.followRedirects(ctx, org.Bytes)
		if err != nil {
			return RecordState{}, err
		}
		st.OrganizationID, st.OrganizationMemberID = canon.String(), orgMember.String()
	}
	return st, nil
}

// followRedirects returns the id id finally redirects to (itself when none).
func (s *Store) followRedirects(ctx context.Context, id uuid.UUID) (uuid.UUID, error) {
	var out uuid.UUID
	err := s.pool.QueryRow(ctx, `
		WITH RECURSIVE chain(id, depth) AS (
			SELECT $1::uuid, 0
			UNION ALL
			SELECT r.new_id, c.depth + 1 FROM catalog_redirects r JOIN chain c ON r.old_id = c.id WHERE c.depth < 32
		)
		SELECT id FROM chain ORDER BY depth DESC LIMIT 1`, [16]byte(id)).Scan((*[16]byte)(&out))
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("error following redirects of %s: %w", id, err)
	}
	return out, nil
}
