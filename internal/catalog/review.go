package catalog

import (
	"context"
	"fmt"

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
