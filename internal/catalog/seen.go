package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SourceKey names a source record: its source and its external id.
type SourceKey struct {
	Source     string
	ExternalID string
}

// SeenAt returns, for each of keys the catalog holds, when its current content arrived: the time
// of the event that brought it. A re-delivery of equal content does not move it. The dead-letter
// index uses it to tell that a later version of a rejected record landed.
func (s *Store) SeenAt(ctx context.Context, keys []SourceKey) (map[SourceKey]time.Time, error) {
	out := make(map[SourceKey]time.Time, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	sources, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		sources[i], ids[i] = k.Source, k.ExternalID
	}
	rows, err := s.pool.Query(ctx, `
		SELECT r.source, r.external_id, r.seen_at FROM catalog_source_records r
		JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS u(source, external_id)) u USING (source, external_id)`,
		sources, ids)
	if err != nil {
		return nil, fmt.Errorf("error reading source records: %w", err)
	}
	var k SourceKey
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&k.Source, &k.ExternalID, &at}, func() error { out[k] = at; return nil })
	if err != nil {
		return nil, fmt.Errorf("error reading source records: %w", err)
	}
	return out, nil
}
