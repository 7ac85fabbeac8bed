package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The HSDS shapes, assembled by PostgreSQL in one query per request: nested objects come from
// correlated subqueries on indexed keys, never from one query per row.
const (
	// lastModifiedSQL formats a service's last_modified as an RFC 3339 UTC date-time.
	lastModifiedSQL = `to_char(s.last_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

	// orgBriefSQL is an organization's one-to-one fields (HSDS organization_list item).
	orgBriefSQL = `(o.doc - '{organization_identifiers,phones,attributes,metadata}'::text[])`

	// serviceBriefSQL is a service's one-to-one fields.
	serviceBriefSQL = `((s.doc - '{phones,schedules,attributes,metadata}'::text[]) ||
		jsonb_build_object('last_modified', ` + lastModifiedSQL + `))`

	// serviceListSQL is an HSDS service_list item: one-to-one fields and the organization.
	serviceListSQL = serviceBriefSQL + ` || jsonb_build_object('organization',
		(SELECT ` + orgBriefSQL + ` FROM catalog_organizations o WHERE o.id = s.organization_id))`

	// serviceFullSQL is an HSDS service_full: the service's own doc with phones, schedules and
	// attributes, its organization, and its service_at_locations with their locations.
	serviceFullSQL = `s.doc || jsonb_build_object(
		'last_modified', ` + lastModifiedSQL + `,
		'organization', (SELECT ` + orgBriefSQL + ` FROM catalog_organizations o WHERE o.id = s.organization_id),
		'service_at_locations', coalesce((
			SELECT jsonb_agg(sal.doc || jsonb_build_object('location', l.doc) ORDER BY sal.external_id, sal.id)
			FROM catalog_service_at_locations sal JOIN catalog_locations l ON l.id = sal.location_id
			WHERE sal.service_id = s.id), '[]'::jsonb))`

	// organizationFullSQL is an HSDS organization: its own doc, its services (one-to-one fields),
	// the locations where they are delivered, and its funding (the grants it received, latest
	// first).
	organizationFullSQL = `o.doc || jsonb_build_object(
		'funding', coalesce((
			SELECT jsonb_agg(f.doc ORDER BY f.doc->>'start_date' DESC NULLS LAST, f.doc->>'application_number', f.id)
			FROM catalog_funding f WHERE f.organization_id = o.id), '[]'::jsonb),
		'services', coalesce((
			SELECT jsonb_agg(` + serviceBriefSQL + ` ORDER BY s.name, s.id)
			FROM catalog_services s WHERE s.organization_id = o.id), '[]'::jsonb),
		'locations', coalesce((
			SELECT jsonb_agg(l.doc ORDER BY l.doc->>'name', l.id) FROM catalog_locations l
			WHERE l.id IN (
				SELECT sal.location_id FROM catalog_service_at_locations sal
				JOIN catalog_services s ON s.id = sal.service_id WHERE s.organization_id = o.id)), '[]'::jsonb))`
)

// ListServices returns a page of services (HSDS service_list items), ordered by name and id, or
// by relevance first when the filter has a search.
func (s *Store) ListServices(ctx context.Context, f ServiceFilter) (Page, error) {
	var w where
	order := "s.name, s.id"
	if q := strings.TrimSpace(f.Search); q != "" {
		w.add("s.search @@ websearch_to_tsquery('russian', %s)", q)
		// Most relevant first: a match in the service's name outranks one in its organization's.
		order = fmt.Sprintf("ts_rank(s.search, websearch_to_tsquery('russian', $%d)) DESC, s.name, s.id", len(w.args))
	}
	if f.TaxonomyTermID != "" {
		w.add("s.taxonomy_term_ids @> ARRAY[%s::text]", f.TaxonomyTermID)
	}
	if f.OrganizationID != "" {
		id, err := uuid.Parse(f.OrganizationID)
		if err != nil {
			return emptyPage(f.Page, f.PerPage), nil // no organization has such an id
		}
		w.add("s.organization_id = %s", [16]byte(id))
	}
	if !f.ModifiedAfter.IsZero() {
		w.add("s.last_modified >= %s", f.ModifiedAfter)
	}
	p, err := s.page(ctx, "catalog_services s", serviceListSQL, order, w, f.Page, f.PerPage)
	if err != nil {
		return Page{}, fmt.Errorf("error listing services: %w", err)
	}
	return p, nil
}

// ListOrganizations returns a page of organizations (HSDS organization_list items), ordered by
// name and id.
func (s *Store) ListOrganizations(ctx context.Context, f OrganizationFilter) (Page, error) {
	var w where
	if q := strings.TrimSpace(f.Search); q != "" {
		w.add("o.search @@ websearch_to_tsquery('russian', %s)", q)
	}
	if !f.ModifiedAfter.IsZero() {
		w.add("o.last_modified >= %s", f.ModifiedAfter)
	}
	p, err := s.page(ctx, "catalog_organizations o", orgBriefSQL, "o.name, o.id", w, f.Page, f.PerPage)
	if err != nil {
		return Page{}, fmt.Errorf("error listing organizations: %w", err)
	}
	return p, nil
}

// GetService returns a service as HSDS service_full, a *RedirectError (ErrMerged) when the id
// merged into another service, or ErrNotFound.
func (s *Store) GetService(ctx context.Context, id string) (json.RawMessage, error) {
	return s.get(ctx, id, "SELECT "+serviceFullSQL+" FROM catalog_services s WHERE s.id = $1", EntityService)
}

// GetOrganization returns an organization with its services, locations and funding, a
// *RedirectError (ErrMerged) when the id merged into another organization, or ErrNotFound.
func (s *Store) GetOrganization(ctx context.Context, id string) (json.RawMessage, error) {
	return s.get(ctx, id, "SELECT "+organizationFullSQL+" FROM catalog_organizations o WHERE o.id = $1", EntityOrganization)
}

func (s *Store) get(ctx context.Context, id, sql, typ string) (json.RawMessage, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", typ, id, ErrNotFound)
	}
	var doc []byte
	if err := s.pool.QueryRow(ctx, sql, [16]byte(uid)).Scan(&doc); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			if err := s.redirect(ctx, typ, uid); err != nil {
				return nil, err // a *RedirectError when it merged into another
			}
			return nil, fmt.Errorf("%s %s: %w", typ, id, ErrNotFound)
		}
		return nil, fmt.Errorf("error reading %s %s: %w", typ, id, err)
	}
	return doc, nil
}

// Count returns the number of rows per entity type, and of source records under
// CountSourceRecords.
func (s *Store) Count(ctx context.Context) (map[string]int64, error) {
	var svc, org, loc, sal, fund, src int64
	err := s.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM catalog_services), (SELECT count(*) FROM catalog_organizations),
		       (SELECT count(*) FROM catalog_locations), (SELECT count(*) FROM catalog_service_at_locations),
		       (SELECT count(*) FROM catalog_funding), (SELECT count(*) FROM catalog_source_records)`).Scan(&svc, &org, &loc, &sal, &fund, &src)
	if err != nil {
		return nil, fmt.Errorf("error counting catalog rows: %w", err)
	}
	return map[string]int64{
		EntityService: svc, EntityOrganization: org, EntityLocation: loc, EntityServiceAtLocation: sal,
		EntityFunding: fund, CountSourceRecords: src,
	}, nil
}

// SourceRecordIDs returns the external ids stored for a source, sorted.
func (s *Store) SourceRecordIDs(ctx context.Context, source string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id FROM catalog_source_records WHERE source = $1 ORDER BY external_id`, source)
	if err != nil {
		return nil, fmt.Errorf("error reading source records of %s: %w", source, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("error reading source records of %s: %w", source, err)
	}
	return ids, nil
}

// EntityDigest is what identifies an entity's state: its version and the hash of its content.
type EntityDigest struct {
	Version     int64
	ContentHash string
}

// Digest returns every entity's digest, keyed "<entity type>/<id>". Two catalogs with equal digests
// hold the same entities with the same content, reached through the same number of changes: it is
// how a replay, a restore or a crash recovery is checked against a reference.
func (s *Store) Digest(ctx context.Context) (map[string]EntityDigest, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT 'organization', id, version, content_hash FROM catalog_organizations
		UNION ALL SELECT 'location', id, version, content_hash FROM catalog_locations
		UNION ALL SELECT 'service', id, version, content_hash FROM catalog_services
		UNION ALL SELECT 'service_at_location', id, version, content_hash FROM catalog_service_at_locations
		UNION ALL SELECT 'funding', id, version, content_hash FROM catalog_funding`)
	if err != nil {
		return nil, fmt.Errorf("error reading catalog digest: %w", err)
	}
	defer rows.Close()
	out := map[string]EntityDigest{}
	for rows.Next() {
		var typ string
		var id uuid.UUID
		var d EntityDigest
		if err := rows.Scan(&typ, &id, &d.Version, &d.ContentHash); err != nil {
			return nil, fmt.Errorf("error reading catalog digest: %w", err)
		}
		out[typ+"/"+id.String()] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error reading catalog digest: %w", err)
	}
	return out, nil
}

// where accumulates filter conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition; %s in cond stands for the argument's placeholder.
func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf(cond, "$"+strconv.Itoa(len(w.args))))
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// normalizePaging applies the defaults and limits: page from 1, per page 1 to MaxPerPage.
func normalizePaging(page, perPage int) (int, int) {
	if page < 1 {
		page = 1
	}
	if perPage < 1 {
		perPage = DefaultPerPage
	}
	return page, min(perPage, MaxPerPage)
}

// page runs the count and the page query in one round trip.
func (s *Store) page(ctx context.Context, from, item, order string, w where, page, perPage int) (Page, error) {
	page, perPage = normalizePaging(page, perPage)
	p := Page{PageNumber: page, Contents: []json.RawMessage{}}
	n := len(w.args)
	b := &pgx.Batch{}
	b.Queue("SELECT count(*) FROM "+from+w.sql(), w.args...).QueryRow(func(row pgx.Row) error {
		return row.Scan(&p.TotalItems)
	})
	b.Queue(fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT $%d OFFSET $%d", item, from, w.sql(), order, n+1, n+2),
		append(w.args, perPage, int64(page-1)*int64(perPage))...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var doc []byte
			if err := rows.Scan(&doc); err != nil {
				return err
			}
			p.Contents = append(p.Contents, doc)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return Page{}, err
	}
	p.fill(perPage)
	return p, nil
}

func emptyPage(page, perPage int) Page {
	page, perPage = normalizePaging(page, perPage)
	p := Page{PageNumber: page, Contents: []json.RawMessage{}}
	p.fill(perPage)
	return p
}

// fill sets the derived paging fields from TotalItems, PageNumber and Contents.
func (p *Page) fill(perPage int) {
	p.Size = len(p.Contents)
	p.TotalPages = (p.TotalItems + perPage - 1) / perPage
	p.FirstPage = p.PageNumber == 1
	p.LastPage = p.PageNumber >= p.TotalPages
	p.Empty = p.Size == 0
}
