package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Merges and splits a reviewer decides. Both move members between canonical entities
// (catalog_members), then rebuild what that changes with Apply's own machinery (survivorship,
// versions, metadata, changes): the canonical entities involved, the entities that refer to them
// (services and locations through organization_id, service_at_locations, funding, source records)
// and, for a merge, the loser, which goes with a ChangeMerged and a redirect to the winner. A split
// gives the members back their original canonical id: the loser of the merge that brought them, so
// that links made before the merge work again.

// RedirectError says that an id merged into another: read To instead (HTTP 301).
type RedirectError struct {
	EntityType string
	From, To   uuid.UUID
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("%s %s merged into %s", e.EntityType, e.From, e.To)
}

// Is makes errors.Is(err, ErrMerged) hold.
func (e *RedirectError) Is(target error) bool { return target == ErrMerged }

// redirect returns the RedirectError of an id that merged away, or nil.
func (s *Store) redirect(ctx context.Context, typ string, id uuid.UUID) error {
	var to uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT new_id FROM catalog_redirects WHERE old_id = $1 AND entity_type = $2`,
		[16]byte(id), typ).Scan((*[16]byte)(&to))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("error reading redirects: %w", err)
	}
	return &RedirectError{EntityType: typ, From: id, To: to}
}

// tableOf names the table of a resolved entity type.
func tableOf(typ string) string {
	switch typ {
	case EntityOrganization:
		return "catalog_organizations"
	case EntityLocation:
		return "catalog_locations"
	default:
		return "catalog_services"
	}
}

// Lookup returns the canonical entity an id stands for now — a canonical id, a member id, or an id
// that merged away — with its entity type, or ErrNotFound.
func (s *Store) Lookup(ctx context.Context, tx pgx.Tx, id uuid.UUID) (uuid.UUID, string, error) {
	var canonical uuid.UUID
	var typ string
	err := tx.QueryRow(ctx, `
		SELECT canonical_id, entity_type FROM (
			SELECT canonical_id, entity_type, 0 AS o FROM catalog_members WHERE member_id = $1
			UNION ALL SELECT canonical_id, entity_type, 1 FROM catalog_members WHERE canonical_id = $1
			UNION ALL SELECT r.new_id, r.entity_type, 2 FROM catalog_redirects r WHERE r.old_id = $1
		) x ORDER BY o LIMIT 1`, [16]byte(id)).Scan((*[16]byte)(&canonical), &typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, "", fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("error looking up %s: %w", id, err)
	}
	return canonical, typ, nil
}

// Merge makes the canonical entities of into and from one, under into's canonical id: from's
// members join it, from's id redirects to it, and the pair is remembered (catalog_merges). into
// and from may be canonical ids, member ids or merged-away ids of the same entity type. It
// returns the changes for the outbox.
func (s *Store) Merge(ctx context.Context, tx pgx.Tx, into, from uuid.UUID, by string) ([]Change, error) {
	winner, typ, err := s.Lookup(ctx, tx, into)
	if err != nil {
		return nil, err
	}
	loser, typ2, err := s.Lookup(ctx, tx, from)
	if err != nil {
		return nil, err
	}
	switch {
	case typ != typ2:
		return nil, fmt.Errorf("%w: a %s cannot merge with a %s", ErrBadDecision, typ, typ2)
	case winner == loser:
		return nil, fmt.Errorf("%w: %s and %s are one %s already", ErrBadDecision, into, from, typ)
	}
	if err := lockEntities(ctx, tx, winner, loser); err != nil {
		return nil, err
	}
	members, _, err := clusterMembers(ctx, tx, loser)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	b := &pgx.Batch{}
	b.Queue(`UPDATE catalog_members SET canonical_id = $1 WHERE canonical_id = $2`, [16]byte(winner), [16]byte(loser))
	b.Queue(`INSERT INTO catalog_merges (entity_type, winner, loser, members, how, score, matched, merged_at)
		VALUES ($1, $2, $3, $4, 'review', 1, '{}', $5)`, typ, [16]byte(winner), [16]byte(loser), idArgs(members), now)
	// A merge overrides an earlier "keep apart" between the two.
	b.Queue(`DELETE FROM catalog_apart p USING catalog_members x, catalog_members y
		WHERE x.canonical_id = $1 AND y.canonical_id = $1 AND p.a = x.member_id AND p.b = y.member_id`, [16]byte(winner))
	b.Queue(`UPDATE catalog_review r SET status = 'merged', decided_at = $2, decided_by = $3
		FROM catalog_members x, catalog_members y
		WHERE r.status = 'open' AND x.canonical_id = $1 AND y.canonical_id = $1
		  AND r.member_id = x.member_id AND r.candidate_id = y.member_id`, [16]byte(winner), now, by)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("error merging %s into %s: %w", loser, winner, err)
	}
	return s.regroup(ctx, tx, typ, []uuid.UUID{winner}, map[uuid.UUID]uuid.UUID{loser: winner}, nil, now)
}

// Split takes members out of the canonical entity id and makes them a canonical entity of their
// own again, under their original id: the loser of the merge that brought exactly them, else the
// id of the first of them. With no members it undoes the last merge into id. The members and the
// rest are remembered as apart, so that resolution never joins them again.
func (s *Store) Split(ctx context.Context, tx pgx.Tx, id uuid.UUID, members []uuid.UUID, by string) ([]Change, uuid.UUID, error) {
	canonical, typ, err := s.Lookup(ctx, tx, id)
	if err != nil {
		return nil, uuid.Nil, err
	}
	if err := lockEntities(ctx, tx, canonical); err != nil {
		return nil, uuid.Nil, err
	}
	all, sources, err := clusterMembers(ctx, tx, canonical)
	if err != nil {
		return nil, uuid.Nil, err
	}
	// The merges into it, last first: the one whose members are being split off names the id.
	type merge struct {
		id      int64
		loser   uuid.UUID
		members []uuid.UUID
	}
	var merges []merge
	rows, err := tx.Query(ctx, `SELECT id, loser, members FROM catalog_merges
		WHERE winner = $1 AND undone_at IS NULL ORDER BY id DESC`, [16]byte(canonical))
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("error reading merges: %w", err)
	}
	var mg merge
	var ms [][16]byte
	_, err = pgx.ForEachRow(rows, []any{&mg.id, (*[16]byte)(&mg.loser), &ms}, func() error {
		m := merge{id: mg.id, loser: mg.loser}
		for _, x := range ms {
			m.members = append(m.members, x)
		}
		merges = append(merges, m)
		return nil
	})
	if err != nil {
		return nil, uuid.Nil, fmt.Errorf("error reading merges: %w", err)
	}
	if len(members) == 0 {
		if len(merges) == 0 {
			return nil, uuid.Nil, fmt.Errorf("%w: nothing merged into %s", ErrBadDecision, canonical)
		}
		members = merges[0].members
	}
	for _, m := range members {
		if !slices.Contains(all, m) {
			return nil, uuid.Nil, fmt.Errorf("%w: %s is not a member of %s", ErrBadDecision, m, canonical)
		}
	}
	var rest []uuid.UUID
	for _, m := range all {
		if !slices.Contains(members, m) {
			rest = append(rest, m)
		}
	}
	if len(rest) == 0 {
		return nil, uuid.Nil, fmt.Errorf("%w: a split must leave %s some members", ErrBadDecision, canonical)
	}
	// The merges that brought only members now split off are undone; the latest of them names
	// the split-off entity (its loser was their canonical id before).
	newID := slices.MinFunc(members, compareIDs)
	var undo []int64
	for _, m := range merges {
		if !slices.ContainsFunc(m.members, func(x uuid.UUID) bool { return !slices.Contains(members, x) }) {
			if len(undo) == 0 {
				newID = m.loser
			}
			undo = append(undo, m.id)
		}
	}
	if newID == canonical {
		// The members keep the id; the rest take theirs back (the winner was among the split ones).
		newID = slices.MinFunc(rest, compareIDs)
		members, rest = rest, members
	}
	now := time.Now().UTC()
	var as, bs [][16]byte
	for _, x := range members {
		for _, y := range rest {
			if compareIDs(x, y) > 0 {
				x, y = y, x
			}
			as, bs = append(as, x), append(bs, y)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE catalog_members SET canonical_id = $1 WHERE member_id = ANY ($2)`, [16]byte(newID), idArgs(members))
	b.Queue(`UPDATE catalog_merges SET undone_at = $2 WHERE id = ANY ($1)`, undo, now)
	b.Queue(`DELETE FROM catalog_redirects WHERE old_id = $1`, [16]byte(newID))
	b.Queue(`INSERT INTO catalog_apart (a, b, decided_at) SELECT * , $3::timestamptz FROM unnest($1::uuid[], $2::uuid[])
		ON CONFLICT DO NOTHING`, as, bs, now)
	b.Queue(`UPDATE catalog_review SET status = 'split', decided_at = $3, decided_by = $4
		WHERE status = 'open' AND (member_id = ANY ($1) AND candidate_id = ANY ($2) OR member_id = ANY ($2) AND candidate_id = ANY ($1))`,
		idArgs(members), idArgs(rest), now, by)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, uuid.Nil, fmt.Errorf("error splitting %s: %w", canonical, err)
	}
	// What refers to the entity goes with its source's member; a source on both sides stays.
	bySource := map[string]uuid.UUID{}
	for _, m := range members {
		bySource[sources[m]] = newID
	}
	for _, m := range rest {
		bySource[sources[m]] = canonical
	}
	chs, err := s.regroup(ctx, tx, typ, []uuid.UUID{canonical, newID}, nil,
		map[uuid.UUID]map[string]uuid.UUID{canonical: bySource}, now)
	return chs, newID, err
}

// lockEntities serializes with Apply on the canonical entities (lockBuckets).
func lockEntities(ctx context.Context, tx pgx.Tx, ids ...uuid.UUID) error {
	if _, err := tx.Exec(ctx, `SELECT count(pg_advisory_xact_lock($1::int, k)) FROM unnest($2::int[]) AS k`,
		sharedLockSpace, lockBuckets(ids)); err != nil {
		return fmt.Errorf("error locking canonical entities: %w", err)
	}
	return nil
}

// clusterMembers returns the members of a canonical entity, and the source of each.
func clusterMembers(ctx context.Context, tx pgx.Tx, canonical uuid.UUID) ([]uuid.UUID, map[uuid.UUID]string, error) {
	rows, err := tx.Query(ctx, `SELECT member_id, source FROM catalog_members WHERE canonical_id = $1 ORDER BY member_id`, [16]byte(canonical))
	if err != nil {
		return nil, nil, fmt.Errorf("error reading members of %s: %w", canonical, err)
	}
	var out []uuid.UUID
	sources := map[uuid.UUID]string{}
	var id uuid.UUID
	var source string
	_, err = pgx.ForEachRow(rows, []any{(*[16]byte)(&id), &source}, func() error {
		out = append(out, id)
		sources[id] = source
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("error reading members of %s: %w", canonical, err)
	}
	return out, sources, nil
}

// regroup rebuilds the canonical entities ids of type typ after their members moved, the entities
// that refer to them, and removes the ones merged away (gone: old id → new id). What refers to an
// entity by source (service_at_locations, funding, source records) moves as bySource says: old
// canonical id → source → new canonical id; to the winner for what merged away.
func (s *Store) regroup(ctx context.Context, tx pgx.Tx, typ string, ids []uuid.UUID, gone map[uuid.UUID]uuid.UUID,
	bySource map[uuid.UUID]map[string]uuid.UUID, now time.Time) ([]Change, error) {
	a := newApplier(now)
	rv := s.newResolver()
	a.rv = rv
	old := slices.Clone(ids)
	for id := range gone {
		old = append(old, id)
	}
	if err := rv.loadMembers(ctx, tx, `WHERE m.canonical_id = ANY ($1)`, idArgs(ids), true); err != nil {
		return nil, err
	}
	var moved []uuid.UUID // the members whose canonical id changed, or whose cluster did
	for _, id := range ids {
		for m := range rv.clusters[id] {
			moved = append(moved, m)
		}
	}
	// Entities of other types that refer to these members rebuild too.
	var deps []uuid.UUID
	if typ == EntityOrganization {
		rows, err := tx.Query(ctx, `SELECT DISTINCT canonical_id FROM catalog_members
			WHERE entity_type IN ('service', 'location') AND doc->>'organization_id' = ANY ($1::text[])`, idStrings(moved))
		if err != nil {
			return nil, fmt.Errorf("error finding dependents: %w", err)
		}
		var id uuid.UUID
		if _, err := pgx.ForEachRow(rows, []any{(*[16]byte)(&id)}, func() error { deps = append(deps, id); return nil }); err != nil {
			return nil, fmt.Errorf("error finding dependents: %w", err)
		}
		if err := rv.loadMembers(ctx, tx, `WHERE m.canonical_id = ANY ($1)`, idArgs(deps), true); err != nil {
			return nil, err
		}
	}
	// Every member the docs refer to, for their canonical ids.
	var refs []uuid.UUID
	for _, m := range rv.members {
		for _, k := range []string{"organization_id", "location_id", "service_id"} {
			if id, err := uuid.Parse(str(m.fields[k])); err == nil {
				if _, ok := rv.members[id]; !ok {
					refs = append(refs, id)
				}
			}
		}
	}
	if err := rv.loadMembers(ctx, tx, `WHERE m.member_id = ANY ($1)`, idArgs(refs), false); err != nil {
		return nil, err
	}
	idm := rv.idMap()
	all := slices.Concat(ids, deps)
	if err := a.loadStates(ctx, tx, slices.Concat(all, old)); err != nil {
		return nil, err
	}
	for _, id := range all {
		e, source, err := rv.rebuild(id, idm)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue
		}
		if err := a.upsertRebuilt(source, e); err != nil {
			return nil, err
		}
	}
	// Service_at_locations, funding and source records follow their source's member.
	if bySource == nil {
		bySource = map[uuid.UUID]map[string]uuid.UUID{}
	}
	for from := range gone {
		bySource[from] = map[string]uuid.UUID{}
	}
	if err := a.repoint(ctx, tx, typ, bySource, gone); err != nil {
		return nil, err
	}
	var chs []Change
	b := &pgx.Batch{}
	for from, to := range gone {
		st := a.state(from)
		version := st.version + 1
		doc, _ := json.Marshal(map[string]string{"id": from.String(), "merged_into": to.String()})
		chs = append(chs, Change{EntityType: typ, EntityID: from.String(), Op: ChangeMerged, Version: version, Doc: doc})
		b.Queue(`INSERT INTO catalog_redirects (old_id, new_id, entity_type, merged_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id, merged_at = excluded.merged_at`,
			[16]byte(from), [16]byte(to), typ, now)
		b.Queue(`UPDATE catalog_redirects SET new_id = $2 WHERE new_id = $1`, [16]byte(from), [16]byte(to))
		b.Queue(`INSERT INTO catalog_tombstones (id, version, deleted_at) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted_at = excluded.deleted_at`, [16]byte(from), version, now)
	}
	if err := a.write(ctx, tx); err != nil {
		return nil, err
	}
	for from := range gone {
		// After write: what referred to it points to the winner now.
		b.Queue(`DELETE FROM `+tableOf(typ)+` WHERE id = $1`, [16]byte(from))
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("error recording merges: %w", err)
		}
	}
	return append(a.changes, chs...), nil
}

// rebuild makes a canonical entity from its members, or returns nil when it has none. It returns
// the source of its most trusted member.
func (rv *resolver) rebuild(id uuid.UUID, idm map[string]string) (*entity, string, error) {
	set := rv.clusters[id]
	if len(set) == 0 {
		return nil, "", nil
	}
	var named *member
	for mid := range set {
		m := rv.members[mid]
		if named == nil || mid == id || (named.id != id && compareIDs(mid, named.id) < 0) {
			named = m
		}
	}
	var fields map[string]any
	var prov []provenance
	if len(set) == 1 && named.id == id {
		// Alone under its own id: as its source gave it, as Apply writes it (canonicalEntity).
		fields = named.fields
		remapFKs(fields, idm)
	} else {
		fields, prov = rv.survivor(set, idm)
		fields["id"] = id.String()
	}
	e, err := newEntity(named.typ, id, named.localID, fields)
	if err != nil {
		return nil, "", err
	}
	if len(set) > 1 {
		e.provenance = prov
	}
	if e.typ == EntityService {
		e.organizationID, _ = uuid.Parse(str(fields["organization_id"]))
	}
	return e, named.source, nil
}

// loadStates reads the stored version and doc of entities of the resolved types.
func (a *applier) loadStates(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	b := &pgx.Batch{}
	for _, table := range []string{"catalog_organizations", "catalog_locations", "catalog_services"} {
		b.Queue(`SELECT id, content_hash, version, doc FROM `+table+` WHERE id = ANY ($1)`, idArgs(ids)).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				st := &entState{exists: true}
				if err := rows.Scan((*[16]byte)(&id), &st.hash, &st.version, &st.oldDoc); err != nil {
					return err
				}
				a.states[id] = st
			}
			return rows.Err()
		})
	}
	b.Queue(`SELECT id, version FROM catalog_tombstones WHERE id = ANY ($1)`, idArgs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			var version int64
			if err := rows.Scan((*[16]byte)(&id), &version); err != nil {
				return err
			}
			if _, ok := a.states[id]; !ok {
				a.states[id] = &entState{version: version, tombstoned: true}
			}
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("error reading catalog state: %w", err)
	}
	return nil
}

// upsertRebuilt writes a rebuilt entity; a service takes its organization's name for search as
// stored when the batch is written (its organization may be rebuilt in the same batch).
func (a *applier) upsertRebuilt(source string, e *entity) error {
	if e.typ == EntityService {
		e.orgNameUnknown = true
	}
	return a.upsert(source, e)
}

// repoint moves what refers to the regrouped entities by source — service_at_locations
// (location_id, service_id), funding and source records (organization_id, service_id) — to the
// canonical entity of their source's member. bySource maps each old canonical id and source to
// the new canonical id.
func (a *applier) repoint(ctx context.Context, tx pgx.Tx, typ string, bySource map[uuid.UUID]map[string]uuid.UUID, gone map[uuid.UUID]uuid.UUID) error {
	target := func(old uuid.UUID, source string) uuid.UUID {
		if to, ok := bySource[old][source]; ok {
			return to
		}
		if to, ok := gone[old]; ok {
			return to
		}
		return old
	}
	olds := make([]uuid.UUID, 0, len(bySource))
	for o := range bySource {
		olds = append(olds, o)
	}
	var refTable, col, key string
	switch typ {
	case EntityLocation:
		refTable, col, key = "catalog_service_at_locations", "location_id", "location_id"
	case EntityService:
		refTable, col, key = "catalog_service_at_locations", "service_id", "service_id"
	default:
		refTable, col, key = "catalog_funding", "organization_id", "organization_id"
	}
	type ref struct {
		id, old    uuid.UUID
		source     string
		ext        string
		hash       string
		version    int64
		doc        []byte
		svc, loc   uuid.UUID
		org        uuid.UUID
		sourceRecs string
	}
	var refs []ref
	extra := ", service_id, location_id, NULL::uuid, ''"
	if refTable == "catalog_funding" {
		extra = ", NULL::uuid, NULL::uuid, organization_id, source_record"
	}
	rows, err := tx.Query(ctx, `SELECT id, `+col+`, source, external_id, content_hash, version, doc`+extra+`
		FROM `+refTable+` WHERE `+col+` = ANY ($1) FOR UPDATE`, idArgs(olds))
	if err != nil {
		return fmt.Errorf("error reading references: %w", err)
	}
	for rows.Next() {
		var r ref
		var svc, loc, org *[16]byte
		if err := rows.Scan((*[16]byte)(&r.id), (*[16]byte)(&r.old), &r.source, &r.ext, &r.hash, &r.version, &r.doc, &svc, &loc, &org, &r.sourceRecs); err != nil {
			rows.Close()
			return fmt.Errorf("error reading references: %w", err)
		}
		if svc != nil {
			r.svc, r.loc = *svc, *loc
		}
		if org != nil {
			r.org = *org
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("error reading references: %w", err)
	}
	for _, r := range refs {
		to := target(r.old, r.source)
		if to == r.old {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(r.doc, &fields); err != nil {
			return fmt.Errorf("error reading %s %s: %w", refTable, r.id, err)
		}
		delete(fields, "metadata")
		fields[key] = to.String()
		etyp := EntityServiceAtLocation
		if refTable == "catalog_funding" {
			etyp = EntityFunding
		}
		e, err := newEntity(etyp, r.id, r.ext, fields)
		if err != nil {
			return err
		}
		e.serviceID, e.locationID, e.organizationID, e.sourceRecord = r.svc, r.loc, to, r.sourceRecs
		switch typ {
		case EntityLocation:
			e.locationID = to
		case EntityService:
			e.serviceID = to
		}
		a.states[r.id] = &entState{exists: true, hash: r.hash, version: r.version, oldDoc: r.doc, serviceID: r.svc, source: r.source}
		if err := a.upsert(r.source, e); err != nil {
			return err
		}
	}
	// Source records name a canonical service or organization; they follow their own source.
	srcCol := "service_id"
	if typ == EntityOrganization {
		srcCol = "organization_id"
	} else if typ != EntityService {
		return nil
	}
	for old, m := range bySource {
		for source, to := range m {
			if to == old {
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE catalog_source_records SET `+srcCol+` = $1 WHERE `+srcCol+` = $2 AND source = $3`,
				[16]byte(to), [16]byte(old), source); err != nil {
				return fmt.Errorf("error repointing source records: %w", err)
			}
		}
		if to, ok := gone[old]; ok {
			if _, err := tx.Exec(ctx, `UPDATE catalog_source_records SET `+srcCol+` = $1 WHERE `+srcCol+` = $2`,
				[16]byte(to), [16]byte(old)); err != nil {
				return fmt.Errorf("error repointing source records: %w", err)
			}
		}
	}
	return nil
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
