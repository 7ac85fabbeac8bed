package catalog

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// upsertSQL upserts rows of an entity table from parallel arrays; %[1]s is the table, %[2]s the
// extra columns, %[3]s their values from u, %[4]s their unnest arguments.
const upsertSQL = `
	INSERT INTO %[1]s AS t (id, source, external_id, doc, content_hash, version, created_at, last_modified%[2]s)
	SELECT u.id, u.source, u.external_id, u.doc::jsonb, u.hash, u.version, $1, $1%[3]s
	FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]%[4]s)
	  AS u(id, source, external_id, doc, hash, version%[2]s)
	ON CONFLICT (id) DO UPDATE SET
	  source = excluded.source, external_id = excluded.external_id, doc = excluded.doc,
	  content_hash = excluded.content_hash, version = excluded.version, last_modified = excluded.last_modified%[5]s`

// termSep joins a service's taxonomy term ids into one array element (pgx cannot send ragged arrays).
const termSep = "\x1f"

type rowSet struct {
	ids      []uuid.UUID
	sources  []string
	extIDs   []string
	docs     []string
	hashes   []string
	versions []int64
	// services
	orgIDs    []uuid.UUID
	orgNames  []pgtype.Text // NULL: the organization's stored name
	termIDs   []string
	termNames []string
	// service_at_locations
	svcIDs []uuid.UUID
	locIDs []uuid.UUID
	// funding (and orgIDs)
	records []string
}

func (rs *rowSet) add(w *pendingWrite) {
	rs.ids = append(rs.ids, w.e.id)
	rs.sources = append(rs.sources, w.source)
	rs.extIDs = append(rs.extIDs, w.e.localID)
	rs.docs = append(rs.docs, string(w.doc))
	rs.hashes = append(rs.hashes, w.e.hash)
	rs.versions = append(rs.versions, w.version)
	switch w.e.typ {
	case EntityService:
		ids, names := terms(w.e.fields)
		rs.orgIDs = append(rs.orgIDs, w.e.organizationID)
		rs.orgNames = append(rs.orgNames, pgtype.Text{String: w.e.orgName, Valid: !w.e.orgNameUnknown})
		rs.termIDs = append(rs.termIDs, ids)
		rs.termNames = append(rs.termNames, names)
	case EntityServiceAtLocation:
		rs.svcIDs = append(rs.svcIDs, w.e.serviceID)
		rs.locIDs = append(rs.locIDs, w.e.locationID)
	case EntityFunding:
		rs.orgIDs = append(rs.orgIDs, w.e.organizationID)
		rs.records = append(rs.records, w.e.sourceRecord)
	}
}

func (rs *rowSet) args(now any, extra ...any) []any {
	return append([]any{now, idArgs(rs.ids), rs.sources, rs.extIDs, rs.docs, rs.hashes, rs.versions}, extra...)
}

// terms returns the distinct taxonomy term ids of a service (joined by termSep) and their names,
// for the filter and search columns.
func terms(fields map[string]any) (string, string) {
	attrs, _ := fields["attributes"].([]any)
	var ids, names []string
	for _, it := range attrs {
		attr, _ := it.(map[string]any)
		id, _ := attr["taxonomy_term_id"].(string)
		if id == "" || slices.Contains(ids, id) {
			continue
		}
		ids = append(ids, id)
		if term, ok := attr["taxonomy_term"].(map[string]any); ok {
			if name, _ := term["name"].(string); name != "" {
				names = append(names, name)
			}
		}
	}
	return strings.Join(ids, termSep), strings.Join(names, " ")
}

// renamedOrganizations returns, sorted, the organizations whose services' org_name may be stale:
// those of written (the organizations the batch writes, sorted) whose name is not what it was
// before the batch. A new organization has no services but the batch's, which carry its name.
func (a *applier) renamedOrganizations(written []uuid.UUID) []uuid.UUID {
	var out []uuid.UUID
	for _, id := range written {
		if before, ok := a.orgName[id]; ok && !reflect.DeepEqual(before, a.writes[id].e.fields["name"]) {
			out = append(out, id)
		}
	}
	return out
}

// write sends every write of the batch in one round trip. Rows go in id order, so that concurrent
// batches touching the same organizations lock them in the same order.
func (a *applier) write(ctx context.Context, tx pgx.Tx) error {
	var orgs, locs, svcs, sals, funds rowSet
	ids := make([]uuid.UUID, 0, len(a.writes))
	for id := range a.writes {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	for _, id := range ids {
		w := a.writes[id]
		switch w.e.typ {
		case EntityOrganization:
			orgs.add(w)
		case EntityLocation:
			locs.add(w)
		case EntityService:
			svcs.add(w)
		case EntityServiceAtLocation:
			sals.add(w)
		case EntityFunding:
			funds.add(w)
		}
	}
	var delSvcs, delSals, delFunds, delOrgs, tombIDs []uuid.UUID
	var tombVersions []int64
	for id, d := range a.deletes {
		switch d.typ {
		case EntityService:
			delSvcs = append(delSvcs, id)
		case EntityServiceAtLocation:
			delSals = append(delSals, id)
		case EntityFunding:
			delFunds = append(delFunds, id)
		case EntityOrganization:
			delOrgs = append(delOrgs, id)
		}
		tombIDs = append(tombIDs, id)
		tombVersions = append(tombVersions, d.version)
	}
	for _, ids := range [][]uuid.UUID{delSvcs, delSals, delFunds, delOrgs} {
		slices.SortFunc(ids, compareIDs)
	}

	b := &pgx.Batch{}
	if len(delSals) > 0 {
		b.Queue(`DELETE FROM catalog_service_at_locations WHERE id = ANY ($1)`, idArgs(delSals))
	}
	if len(delSvcs) > 0 {
		b.Queue(`DELETE FROM catalog_services WHERE id = ANY ($1)`, idArgs(delSvcs))
	}
	if len(delFunds) > 0 {
		b.Queue(`DELETE FROM catalog_funding WHERE id = ANY ($1)`, idArgs(delFunds))
	}
	if len(orgs.ids) > 0 {
		b.Queue(fmt.Sprintf(upsertSQL, "catalog_organizations", "", "", "", ""), orgs.args(a.now)...)
	}
	if len(locs.ids) > 0 {
		b.Queue(fmt.Sprintf(upsertSQL, "catalog_locations", "", "", "", ""), locs.args(a.now)...)
	}
	if len(svcs.ids) > 0 {
		b.Queue(fmt.Sprintf(upsertSQL, "catalog_services",
			", organization_id, org_name, taxonomy_term_ids, term_names",
			", u.organization_id, coalesce(u.org_name, (SELECT coalesce(o.name, '') FROM catalog_organizations o WHERE o.id = u.organization_id), ''), CASE WHEN u.taxonomy_term_ids = '' THEN '{}' ELSE string_to_array(u.taxonomy_term_ids, E'\\x1f') END, u.term_names",
			", $8::uuid[], $9::text[], $10::text[], $11::text[]",
			`, organization_id = excluded.organization_id, org_name = excluded.org_name,
			  taxonomy_term_ids = excluded.taxonomy_term_ids, term_names = excluded.term_names`),
			svcs.args(a.now, idArgs(svcs.orgIDs), svcs.orgNames, svcs.termIDs, svcs.termNames)...)
	}
	if len(sals.ids) > 0 {
		b.Queue(fmt.Sprintf(upsertSQL, "catalog_service_at_locations",
			", service_id, location_id", ", u.service_id, u.location_id", ", $8::uuid[], $9::uuid[]",
			", service_id = excluded.service_id, location_id = excluded.location_id"),
			sals.args(a.now, idArgs(sals.svcIDs), idArgs(sals.locIDs))...)
	}
	if len(funds.ids) > 0 {
		b.Queue(fmt.Sprintf(upsertSQL, "catalog_funding",
			", organization_id, source_record", ", u.organization_id, u.source_record", ", $8::uuid[], $9::text[]",
			", organization_id = excluded.organization_id, source_record = excluded.source_record"),
			funds.args(a.now, idArgs(funds.orgIDs), funds.records)...)
	}
	if len(delOrgs) > 0 {
		// Last: their funding has gone above, and sweepOrganizations made sure no service is theirs.
		b.Queue(`DELETE FROM catalog_organizations WHERE id = ANY ($1)`, idArgs(delOrgs))
	}
	if renamed := a.renamedOrganizations(orgs.ids); len(renamed) > 0 {
		// Services of a renamed organization must be found by its new name.
		b.Queue(`
			UPDATE catalog_services s SET org_name = coalesce(o.name, '')
			FROM catalog_organizations o
			WHERE o.id = ANY ($1) AND s.organization_id = o.id AND s.org_name <> coalesce(o.name, '')`, idArgs(renamed))
	}
	if len(tombIDs) > 0 {
		b.Queue(`
			INSERT INTO catalog_tombstones (id, version, deleted_at)
			SELECT u.id, u.version, $3 FROM unnest($1::uuid[], $2::bigint[]) AS u(id, version)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at`,
			idArgs(tombIDs), tombVersions, a.now)
	}
	if len(a.untomb) > 0 {
		untomb := make([]uuid.UUID, 0, len(a.untomb))
		for id := range a.untomb {
			untomb = append(untomb, id)
		}
		b.Queue(`DELETE FROM catalog_tombstones WHERE id = ANY ($1)`, idArgs(untomb))
	}
	if len(a.srcWrites) > 0 {
		n := len(a.srcWrites)
		sources, extIDs, hashes := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		types, svcIDs, orgIDs := make([]string, 0, n), make([]pgtype.UUID, 0, n), make([]pgtype.UUID, 0, n)
		seen := make([]time.Time, 0, n)
		for k, w := range a.srcWrites {
			sources, extIDs, hashes = append(sources, k.source), append(extIDs, k.externalID), append(hashes, w.hash)
			types, seen = append(types, w.entityType), append(seen, w.seenAt)
			svcIDs = append(svcIDs, pgtype.UUID{Bytes: w.serviceID, Valid: w.entityType == EntityService})
			orgIDs = append(orgIDs, pgtype.UUID{Bytes: w.orgID, Valid: w.entityType == EntityOrganization})
		}
		b.Queue(`
			INSERT INTO catalog_source_records (source, external_id, content_hash, entity_type, service_id, organization_id, seen_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::timestamptz[])
			ON CONFLICT (source, external_id) DO UPDATE SET
			  content_hash = excluded.content_hash, entity_type = excluded.entity_type, service_id = excluded.service_id,
			  organization_id = excluded.organization_id, seen_at = excluded.seen_at`,
			sources, extIDs, hashes, types, svcIDs, orgIDs, seen)
	}
	if len(a.srcDeletes) > 0 {
		sources, extIDs := make([]string, 0, len(a.srcDeletes)), make([]string, 0, len(a.srcDeletes))
		for k := range a.srcDeletes {
			sources, extIDs = append(sources, k.source), append(extIDs, k.externalID)
		}
		b.Queue(`
			DELETE FROM catalog_source_records r
			USING unnest($1::text[], $2::text[]) AS u(source, external_id)
			WHERE r.source = u.source AND r.external_id = u.external_id`, sources, extIDs)
	}
	a.rv.queueWrites(b, a.now)
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("error writing catalog changes: %w", err)
	}
	return nil
}
