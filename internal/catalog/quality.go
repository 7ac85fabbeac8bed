package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Coverage counts a source's records in the catalog and how many of them hold each kind of
// contact detail a front end shows.
type Coverage struct {
	Source  string
	Records int64 // source records in the catalog
	// A record has a phone when its service, its organization, one of its service_at_locations or
	// one of their locations lists one: a number a caller can dial about it.
	Phone int64
	// Address, Hours and Coordinates: one of the record's locations has an address, the service, a
	// service_at_location or a location has a schedule, a location has latitude and longitude.
	// Organization records (grant lists) carry no locations or schedules, only phones.
	Address     int64
	Hours       int64
	Coordinates int64
}

// Coverage returns the coverage of source, or of every source ("") sorted by name. A source with
// no records in the catalog is absent.
func (s *Store) Coverage(ctx context.Context, source string) ([]Coverage, error) {
	// jsonb -> 0 is NULL for a missing field, a non-array and an empty array alike: "has one".
	rows, err := s.pool.Query(ctx, `
		SELECT r.source, count(*),
		       count(*) FILTER (WHERE s.doc->'phones'->0 IS NOT NULL OR o.doc->'phones'->0 IS NOT NULL OR coalesce(l.phone, false)),
		       count(*) FILTER (WHERE coalesce(l.address, false)),
		       count(*) FILTER (WHERE s.doc->'schedules'->0 IS NOT NULL OR coalesce(l.hours, false)),
		       count(*) FILTER (WHERE coalesce(l.coordinates, false))
		FROM catalog_source_records r
		LEFT JOIN catalog_services s ON s.id = r.service_id
		LEFT JOIN catalog_organizations o ON o.id = coalesce(s.organization_id, r.organization_id)
		LEFT JOIN LATERAL (
			SELECT bool_or(sal.doc->'phones'->0 IS NOT NULL OR loc.doc->'phones'->0 IS NOT NULL) AS phone,
			       bool_or(loc.doc->'addresses'->0 IS NOT NULL) AS address,
			       bool_or(sal.doc->'schedules'->0 IS NOT NULL OR loc.doc->'schedules'->0 IS NOT NULL) AS hours,
			       bool_or(jsonb_typeof(loc.doc->'latitude') = 'number' AND jsonb_typeof(loc.doc->'longitude') = 'number') AS coordinates
			FROM catalog_service_at_locations sal
			JOIN catalog_locations loc ON loc.id = sal.location_id
			WHERE sal.service_id = s.id
		) l ON true
		WHERE $1 = '' OR r.source = $1
		GROUP BY r.source
		ORDER BY r.source`, source)
	if err != nil {
		return nil, fmt.Errorf("error reading catalog coverage: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Coverage, error) {
		var c Coverage
		err := row.Scan(&c.Source, &c.Records, &c.Phone, &c.Address, &c.Hours, &c.Coordinates)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("error reading catalog coverage: %w", err)
	}
	return out, nil
}
