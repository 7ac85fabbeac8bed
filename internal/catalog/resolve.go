package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"socialhub/internal/match"
)

// Entity resolution inside Apply. Every organization, location and service a source record
// brings is a member: its own id is CanonicalID(type, source, local id), and it belongs to one
// canonical entity, whose id is the id of the member that created it. A new member is matched
// against the members found by its blocking keys (match.Features.Probes) and joins the best
// candidate's canonical entity when the score reaches the merge threshold, or starts its own and
// leaves a review item when the score falls between the thresholds. Members are matched once,
// when they first arrive: a replay, or an update of a known member, never moves it, so replaying
// `valid` changes nothing and a split stays split.
//
// Concurrency: two resolve consumers may see the same new organization at once (its records sit
// in different partitions). Before looking for candidates a transaction takes transaction-level
// advisory locks on the buckets of every blocking key it probes, in ascending order per entity
// type, organizations before locations before services; the second transaction then waits, and
// its candidate query (a new statement, so a new snapshot under READ COMMITTED) sees the first
// one's member and joins it instead of creating a second canonical entity. Afterwards the
// canonical entities involved are locked by id bucket (lockBuckets) before their members are read
// for survivorship, so concurrent updates of one canonical entity serialize.

// ChangeMerged is the op of a change that says a canonical entity merged into another: its Doc is
// {"id": <old id>, "merged_into": <new id>}, and its id redirects from now on.
const ChangeMerged = "merged"

// resolveLockSpace is the first key of the advisory locks on blocking-key buckets; one space per
// entity type (+0 organizations, +1 locations, +2 services), all above sharedLockSpace.
const resolveLockSpace int32 = 0x5349

// keyLockBuckets bounds the key locks a transaction holds, as sharedLockBuckets does.
const keyLockBuckets = 1024

// member is a source-level entity and what resolution knows of it.
type member struct {
	id        uuid.UUID
	typ       string
	source    string
	localID   string
	canonical uuid.UUID
	fields    map[string]any // its canonical doc as its source gave it (member-level ids)
	doc       []byte
	features  match.Features
	seenAt    time.Time
	isNew     bool // not stored yet: it needs matching
	dirty     bool // to be written
	observed  bool // a record of the batch brought it: its doc and features are the batch's
	// featuresOf is what features were computed from besides fields in this batch: the canonical
	// organization and locations the record named.
	featuresOf string
}

// resolver is the resolution state of one Apply.
type resolver struct {
	cfg      match.Config
	feats    *featureCache
	members  map[uuid.UUID]*member
	clusters map[uuid.UUID]map[uuid.UUID]struct{} // canonical id → member ids (loaded clusters)
	gone     map[uuid.UUID]struct{}               // member rows to delete
	merges   []mergeRow
	reviews  []reviewRow
	apart    map[[2]uuid.UUID]bool
	// clusterSrc lists the sources of the members of the canonical services met while matching
	// (mostly one or two: a list, not a set of its own for each).
	clusterSrc map[uuid.UUID][]string
	// batchKeys indexes the new members of the batch by blocking key, so that two new records of
	// one batch find each other.
	batchKeys map[string][]*member
	// deleteTarget is the canonical service of each deleted service record.
	deleteTarget map[srcKey]uuid.UUID
}

type mergeRow struct {
	typ           string
	winner, loser uuid.UUID
	members       []uuid.UUID
	score         float64
	matched       []string
}

type reviewRow struct {
	typ               string
	member, candidate uuid.UUID
	score             float64
	matched           []string
}

func (s *Store) newResolver() *resolver {
	return &resolver{
		cfg: s.cfg, feats: s.feats, members: map[uuid.UUID]*member{}, clusters: map[uuid.UUID]map[uuid.UUID]struct{}{},
		gone: map[uuid.UUID]struct{}{}, apart: map[[2]uuid.UUID]bool{}, batchKeys: map[string][]*member{},
		deleteTarget: map[srcKey]uuid.UUID{}, clusterSrc: map[uuid.UUID][]string{},
	}
}

// canonicalOf returns the canonical id of a member id (itself when unknown).
func (rv *resolver) canonicalOf(id uuid.UUID) uuid.UUID {
	if m, ok := rv.members[id]; ok {
		return m.canonical
	}
	return id
}

// resolve matches the entities of the batch's records, rewrites them under their canonical ids
// with the fields survivorship picks, and prepares the member, merge and review rows.
func (a *applier) resolve(ctx context.Context, tx pgx.Tx, recs []Record, canon []*canonRecord) error {
	rv := a.rv
	var ids []uuid.UUID
	for i, cr := range canon {
		r := &recs[i]
		if cr == nil {
			if r.Op == OpDelete && a.srcType[srcKey{r.Source, r.ExternalID}] != EntityOrganization {
				ids = append(ids, CanonicalID(EntityService, r.Source, r.ExternalID))
			}
			continue
		}
		ids = append(ids, cr.org.id)
		for _, l := range cr.locations {
			ids = append(ids, l.id)
		}
		if cr.service != nil {
			ids = append(ids, cr.service.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// 1. What is known of these members (their canonical ids).
	if err := rv.loadMembers(ctx, tx, `WHERE m.member_id = ANY ($1)`, idArgs(ids), false); err != nil {
		return err
	}
	// 2. Members as the records give them now; new ones are matched, type by type, because a
	// location's and a service's features name their canonical organization.
	for _, typ := range []string{EntityOrganization, EntityLocation, EntityService} {
		var fresh []*member
		for i, cr := range canon {
			if cr == nil {
				continue
			}
			r := &recs[i]
			for _, e := range cr.entitiesOf(typ) {
				m := rv.observe(r, cr, e)
				if m.isNew && !slices.Contains(fresh, m) {
					fresh = append(fresh, m)
				}
			}
		}
		if err := a.match(ctx, tx, typ, fresh); err != nil {
			return err
		}
	}
	for i, cr := range canon {
		r := &recs[i]
		if cr == nil && r.Op == OpDelete {
			id := CanonicalID(EntityService, r.Source, r.ExternalID)
			rv.deleteTarget[srcKey{r.Source, r.ExternalID}] = rv.canonicalOf(id)
		}
	}
	// 3. Lock the canonical entities, then read every member of theirs for survivorship.
	var canonIDs []uuid.UUID
	for _, m := range rv.members {
		canonIDs = append(canonIDs, m.canonical)
	}
	for _, id := range a.srcOrg {
		canonIDs = append(canonIDs, id)
	}
	if _, err := tx.Exec(ctx, `SELECT count(pg_advisory_xact_lock($1::int, k)) FROM unnest($2::int[]) AS k`,
		sharedLockSpace, lockBuckets(canonIDs)); err != nil {
		return fmt.Errorf("error locking canonical entities: %w", err)
	}
	if err := rv.loadMembers(ctx, tx, `WHERE m.canonical_id = ANY ($1)`, idArgs(canonIDs), true); err != nil {
		return err
	}
	// The organizations the services' members name, so that a service made up anew from its other
	// members (a delete) names its canonical organization.
	var orgRefs []uuid.UUID
	for _, m := range rv.members {
		if m.typ != EntityService {
			continue
		}
		if id, err := uuid.Parse(str(m.fields["organization_id"])); err == nil {
			if _, known := rv.members[id]; !known {
				orgRefs = append(orgRefs, id)
			}
		}
	}
	if len(orgRefs) > 0 {
		if err := rv.loadMembers(ctx, tx, `WHERE m.member_id = ANY ($1)`, idArgs(orgRefs), false); err != nil {
			return err
		}
	}
	// 4. Rewrite each record's entities as their canonical entities.
	idm := rv.idMap()
	for _, cr := range canon {
		if cr != nil {
			if err := rv.rewrite(cr, idm); err != nil {
				return err
			}
		}
	}
	return nil
}

func (cr *canonRecord) entitiesOf(typ string) []*entity {
	switch typ {
	case EntityOrganization:
		return []*entity{cr.org}
	case EntityLocation:
		return cr.locations
	default:
		if cr.service == nil {
			return nil
		}
		return []*entity{cr.service}
	}
}

// loadMembers reads members; with all set it refreshes what is known (after the locks), else it
// only adds. The members the batch itself brings (observed) are read without their doc and
// features, which the batch has already: only their canonical id may have moved.
func (rv *resolver) loadMembers(ctx context.Context, tx pgx.Tx, where string, arg any, all bool) error {
	var dirty []uuid.UUID
	for _, m := range rv.members {
		if m.observed {
			dirty = append(dirty, m.id)
		}
	}
	rows, err := tx.Query(ctx, `SELECT m.member_id, m.entity_type, m.source, m.local_id, m.canonical_id,
		  CASE WHEN d.id IS NULL THEN m.doc END, CASE WHEN d.id IS NULL THEN m.features END, m.seen_at
		FROM catalog_members m LEFT JOIN unnest($2::uuid[]) AS d(id) ON d.id = m.member_id `+where, arg, idArgs(dirty))
	if err != nil {
		return fmt.Errorf("error reading members: %w", err)
	}
	var id, canonical uuid.UUID
	var typ, source, local string
	var doc, feats []byte
	var seen time.Time
	_, err = pgx.ForEachRow(rows, []any{(*[16]byte)(&id), &typ, &source, &local, (*[16]byte)(&canonical), &doc, &feats, &seen}, func() error {
		m, known := rv.members[id]
		if known && (m.observed || !all) {
			// The batch's own version wins; only its cluster may have moved.
			if !m.isNew {
				rv.move(m, canonical)
			}
			return nil
		}
		m = &member{id: id, typ: typ, source: source, localID: local, seenAt: seen}
		if doc != nil {
			m.doc = slices.Clone(doc)
			f, err := rv.feats.decode(id, feats)
			if err != nil {
				return fmt.Errorf("member %s: %w", id, err)
			}
			m.features = f
			if err := json.Unmarshal(doc, &m.fields); err != nil {
				return fmt.Errorf("member %s: %w", id, err)
			}
		}
		rv.members[id] = m
		rv.move(m, canonical)
		return nil
	})
	if err != nil {
		return fmt.Errorf("error reading members: %w", err)
	}
	return nil
}

// move puts a member in a canonical entity.
func (rv *resolver) move(m *member, canonical uuid.UUID) {
	if set := rv.clusters[m.canonical]; set != nil {
		delete(set, m.id)
	}
	m.canonical = canonical
	set := rv.clusters[canonical]
	if set == nil {
		set = map[uuid.UUID]struct{}{}
		rv.clusters[canonical] = set
	}
	set[m.id] = struct{}{}
}

// observe records an entity of a record as its member's current state. A member whose doc and
// features are what is known of it already keeps the time its content last changed: survivorship
// prefers, among equally trusted members, the most recently changed one (and provenance dates a
// field by it), so an organization that two sources spell their own way does not change with
// every record that merely names it again; nor is the member written again.
func (rv *resolver) observe(r *Record, cr *canonRecord, e *entity) *member {
	m, ok := rv.members[e.id]
	if !ok {
		m = &member{id: e.id, typ: e.typ, source: r.Source, localID: e.localID, canonical: e.id, isNew: true}
		rv.members[e.id] = m
		rv.move(m, e.id)
	}
	var org string
	var locs []string
	if e.typ != EntityOrganization {
		org = rv.canonicalOf(cr.org.id).String()
	}
	if e.typ == EntityService {
		locs = make([]string, len(cr.locations))
		for i, l := range cr.locations {
			locs[i] = rv.canonicalOf(l.id).String()
		}
	}
	featuresOf := org + "|" + strings.Join(locs, ",")
	if m.observed && m.featuresOf == featuresOf && sameFields(m, e) {
		// An organization or location that another record of the batch brought just the same.
		m.fields = e.fields
		return m
	}
	var features match.Features
	switch e.typ {
	case EntityOrganization:
		features = match.OrganizationFeatures(r.Source, e.fields)
	case EntityLocation:
		features = match.LocationFeatures(r.Source, org, e.fields)
	case EntityService:
		features = match.ServiceFeatures(r.Source, org, locs, e.fields)
	}
	m.featuresOf = featuresOf
	if !m.isNew && m.fields != nil && m.features.Equal(&features) && sameFields(m, e) {
		m.fields, m.observed = e.fields, true
		return m
	}
	seen := r.SeenAt
	if seen.IsZero() {
		seen = time.Now().UTC()
	}
	m.fields, m.doc, m.seenAt, m.features, m.dirty, m.observed = e.fields, e.doc, seen, features, true, true
	return m
}

// sameFields says whether an entity brings what a member holds. A member's doc is the encoding of
// its fields (written from the entity that brought them, or read with them), and encoding is
// deterministic: equal bytes settle it at the cost of a comparison, which is the common case of an
// organization or location named again. Otherwise the decoded fields are compared, as a doc that
// an earlier version encoded differently may still hold the same fields.
func sameFields(m *member, e *entity) bool {
	return (m.doc != nil && bytes.Equal(m.doc, e.doc)) || reflect.DeepEqual(m.fields, e.fields)
}

type candidate struct {
	id, canonical uuid.UUID
	source        string
	features      match.Features
	// raw is the stored features, decoded (into features) only when the candidate is scored: most
	// candidates of a dense key are passed over first (the prober's own source, a pair kept apart).
	raw []byte
}

// decode makes features current; a candidate of the batch has them already.
func (c *candidate) decode(fc *featureCache) error {
	if c.raw == nil {
		return nil
	}
	f, err := fc.decode(c.id, c.raw)
	if err != nil {
		return fmt.Errorf("member %s: %w", c.id, err)
	}
	c.features, c.raw = f, nil
	return nil
}

// match finds each new member's candidates and decides: join, review, or apart.
func (a *applier) match(ctx context.Context, tx pgx.Tx, typ string, fresh []*member) error {
	if len(fresh) == 0 {
		return nil
	}
	rv := a.rv
	var probes []string
	var freshIDs []uuid.UUID
	for _, m := range fresh {
		probes = append(probes, m.features.Probes()...)
		freshIDs = append(freshIDs, m.id)
	}
	slices.Sort(probes)
	probes = slices.Compact(probes)
	space := resolveLockSpace + int32(slices.Index([]string{EntityOrganization, EntityLocation, EntityService}, typ))
	b := &pgx.Batch{}
	// The planner cannot know how few rows a capped probe reads and would compile the candidate
	// query (JIT), which costs more than running it.
	b.Queue(`SET LOCAL jit = off`)
	b.Queue(`SELECT count(pg_advisory_xact_lock($1::int, k)) FROM unnest($2::int[]) AS k`, space, keyBuckets(probes))
	// Members of the batch that a transaction holding the locks first created meanwhile: they are
	// known now, and join what that transaction made of them.
	b.Queue(`SELECT member_id, canonical_id FROM catalog_members WHERE member_id = ANY ($1)`, idArgs(freshIDs)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, canonical uuid.UUID
			if err := rows.Scan((*[16]byte)(&id), (*[16]byte)(&canonical)); err != nil {
				return err
			}
			if m, ok := rv.members[id]; ok && m.isNew {
				m.isNew = false
				rv.move(m, canonical)
			}
		}
		return rows.Err()
	})
	// At most MaxCandidates members per probed key, each read once with the probed keys it was
	// found by: a dense key (a busy grid cell, a word every service of an organization has) costs
	// MaxCandidates rows however many members share it, so a batch's cost does not grow with the
	// catalog. The keys of a record are probed together, and rarer keys (identifiers, phones, an
	// exact name) find what a capped dense key may leave out.
	byKey := map[string][]*candidate{}
	found := map[uuid.UUID]*candidate{}
	// One row per key and member found by it, with what scoring needs (not the doc). For
	// services, then, the sources of the candidates' canonical services, which a source may join
	// once: a candidate's own source, the members that joined its canonical service
	// (catalog_members_joined_idx: few), and the member the canonical service is named after when
	// it is not itself a candidate.
	b.Queue(`
		WITH hits AS MATERIALIZED (
			SELECT p.key, c.member_id, c.canonical_id, c.source, c.features
			FROM unnest($2::text[]) AS p(key)
			CROSS JOIN LATERAL (
				SELECT member_id, canonical_id, source, features FROM catalog_members
				WHERE entity_type = $1 AND keys @> ARRAY[p.key]
				LIMIT $3
			) c
		)
		SELECT h.key, h.member_id, h.canonical_id, h.source, h.features FROM hits h
		UNION ALL
		SELECT NULL, NULL, j.canonical_id, j.source, NULL FROM catalog_members j
		WHERE $1 = 'service' AND j.canonical_id <> j.member_id
		  AND j.canonical_id = ANY ((SELECT array_agg(DISTINCT canonical_id) FROM hits)::uuid[])
		UNION ALL
		SELECT NULL, NULL, o.member_id, o.source, NULL FROM catalog_members o
		WHERE $1 = 'service' AND o.canonical_id = o.member_id
		  AND o.member_id = ANY ((SELECT array_agg(canonical_id) FROM (
		    SELECT canonical_id FROM hits GROUP BY canonical_id HAVING bool_and(member_id <> canonical_id)) x)::uuid[])`,
		typ, probes, rv.cfg.MaxCandidates).Query(func(rows pgx.Rows) error {
		var key pgtype.Text
		var id pgtype.UUID
		var canonical uuid.UUID
		var source string
		var feats []byte
		for rows.Next() {
			if err := rows.Scan(&key, &id, (*[16]byte)(&canonical), &source, &feats); err != nil {
				return err
			}
			if typ == EntityService {
				rv.addClusterSource(canonical, source)
			}
			if !id.Valid {
				continue // a source of a canonical service
			}
			c, ok := found[id.Bytes]
			if !ok {
				if m, ok := rv.members[id.Bytes]; ok && m.isNew {
					found[id.Bytes] = nil // the batch's own member, made known above
					continue
				}
				c = &candidate{id: id.Bytes, canonical: canonical, source: source, raw: slices.Clone(feats)}
				found[id.Bytes] = c
			}
			if c != nil {
				byKey[key.String] = append(byKey[key.String], c)
			}
		}
		return rows.Err()
	})
	b.Queue(`SELECT a, b FROM catalog_apart WHERE a = ANY ($1) OR b = ANY ($1)`, idArgs(freshIDs)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var x, y uuid.UUID
			if err := rows.Scan((*[16]byte)(&x), (*[16]byte)(&y)); err != nil {
				return err
			}
			rv.apart[[2]uuid.UUID{x, y}] = true
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("error finding %s candidates: %w", typ, err)
	}
	th := rv.cfg.ThresholdsOf(typ)
	for _, m := range fresh {
		if !m.isNew {
			continue
		}
		seen := map[uuid.UUID]bool{}
		var best *candidate
		var bestScore float64
		var decodeErr error
		consider := func(c *candidate) {
			if seen[c.id] || c.id == m.id || rv.isApart(m.id, c.id) {
				return
			}
			seen[c.id] = true
			if typ == EntityService && (c.source == m.source || slices.Contains(rv.clusterSrc[c.canonical], m.source)) {
				// A source lists each of its services once; its duplicates are its own to fix. Nor
				// may two of its services meet through another source's: one organization's
				// services at many points often share a name, and a chain of such matches would
				// make them all one.
				return
			}
			if err := c.decode(rv.feats); err != nil {
				decodeErr = err
				return
			}
			// Candidates are ranked by points; only the best one's match is explained, below.
			score := rv.cfg.Points(&m.features, &c.features)
			if best == nil || score > bestScore || (score == bestScore && compareIDs(c.canonical, best.canonical) < 0) {
				best, bestScore = c, score
			}
		}
		for _, k := range m.features.Probes() {
			cs := byKey[k]
			for _, c := range cs[:min(len(cs), rv.cfg.MaxCandidates)] {
				consider(c)
			}
			// The batch's own members under the key, the nearest in the stream first, as many as
			// the stored ones.
			bk := rv.batchKeys[k]
			for _, o := range bk[max(0, len(bk)-rv.cfg.MaxCandidates):] {
				consider(&candidate{id: o.id, canonical: o.canonical, source: o.source, features: o.features})
			}
		}
		if decodeErr != nil {
			return decodeErr
		}
		m.isNew = false
		rv.addClusterSource(m.canonical, m.source)
		for _, k := range m.features.Keys() {
			rv.batchKeys[k] = append(rv.batchKeys[k], m)
		}
		var bestRes match.Result
		if best != nil {
			bestRes = rv.cfg.Score(&m.features, &best.features)
		}
		switch {
		case best == nil || bestRes.Score < th.Review:
		case bestRes.Score >= th.Merge:
			rv.move(m, best.canonical)
			rv.addClusterSource(best.canonical, m.source)
			rv.merges = append(rv.merges, mergeRow{typ: typ, winner: best.canonical, loser: m.id, members: []uuid.UUID{m.id},
				score: bestRes.Score, matched: bestRes.Matched})
		default:
			rv.reviews = append(rv.reviews, reviewRow{typ: typ, member: m.id, candidate: best.id, score: bestRes.Score, matched: bestRes.Matched})
		}
	}
	return nil
}

// addClusterSource notes that a canonical entity has a member of source.
func (rv *resolver) addClusterSource(canonical uuid.UUID, source string) {
	if set := rv.clusterSrc[canonical]; !slices.Contains(set, source) {
		rv.clusterSrc[canonical] = append(set, source)
	}
}

func (rv *resolver) isApart(x, y uuid.UUID) bool {
	if compareIDs(x, y) > 0 {
		x, y = y, x
	}
	return rv.apart[[2]uuid.UUID{x, y}]
}

// keyBuckets maps blocking keys to their lock buckets, sorted, without repeats.
func keyBuckets(keys []string) []int32 {
	out := make([]int32, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		out = append(out, int32(h.Sum32()%keyLockBuckets))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fkFields are the fields through which HSDS objects name other entities.
var fkFields = []string{"organization_id", "service_id", "location_id", "link_id", "service_at_location_id"}

// rewrite turns a record's entities into their canonical entities: canonical ids, foreign keys to
// canonical entities, and, for entities several members make up, the fields survivorship picks.
// ids maps member ids to canonical ids where they differ (idMap).
func (rv *resolver) rewrite(cr *canonRecord, ids map[string]string) error {
	for _, e := range cr.entitiesOf(EntityOrganization) {
		if err := rv.canonicalEntity(e, ids); err != nil {
			return err
		}
	}
	for _, e := range cr.locations {
		if err := rv.canonicalEntity(e, ids); err != nil {
			return err
		}
	}
	if cr.service != nil {
		if err := rv.canonicalEntity(cr.service, ids); err != nil {
			return err
		}
		cr.service.organizationID = cr.org.id
		cr.service.orgName, _ = cr.org.fields["name"].(string)
	}
	for _, s := range cr.sals {
		s.serviceID, s.locationID = rv.canonicalOf(s.serviceID), rv.canonicalOf(s.locationID)
		if remapFKs(s.fields, ids) {
			if err := s.refresh(); err != nil {
				return err
			}
		}
	}
	for _, f := range cr.funding {
		f.organizationID = cr.org.id
		if remapFKs(f.fields, ids) {
			if err := f.refresh(); err != nil {
				return err
			}
		}
	}
	return nil
}

// canonicalEntity rewrites one entity as its canonical entity.
func (rv *resolver) canonicalEntity(e *entity, ids map[string]string) error {
	m := rv.members[e.id]
	if m == nil {
		return nil
	}
	set := rv.clusters[m.canonical]
	if len(set) <= 1 && m.canonical == e.id {
		// Alone and under its own id: as the source gave it, with its references made canonical.
		if remapFKs(e.fields, ids) {
			return e.refresh()
		}
		return nil
	}
	e.id = m.canonical
	e.fields, e.provenance = rv.survivor(set, ids)
	e.fields["id"] = e.id.String()
	if len(set) <= 1 {
		e.provenance = nil
	}
	return e.refresh()
}

// survivor builds a canonical entity's fields from its members: each field from the most trusted
// member that has a value, then from the one whose content changed last (see observe). It returns
// the provenance of each field.
func (rv *resolver) survivor(set map[uuid.UUID]struct{}, ids map[string]string) (map[string]any, []provenance) {
	ms := make([]*member, 0, len(set))
	for id := range set {
		ms = append(ms, rv.members[id])
	}
	slices.SortFunc(ms, func(x, y *member) int {
		if tx, ty := rv.cfg.TrustOf(x.source), rv.cfg.TrustOf(y.source); tx != ty {
			return tx - ty
		}
		if c := y.seenAt.Compare(x.seenAt); c != 0 {
			return c
		}
		return compareIDs(x.id, y.id)
	})
	out := map[string]any{}
	var prov []provenance
	for _, m := range ms {
		for k, v := range m.fields {
			if _, done := out[k]; done || k == "id" || empty(v) {
				continue
			}
			out[k] = v
			prov = append(prov, provenance{field: k, source: m.source, seenAt: m.seenAt})
		}
	}
	remapFKs(out, ids)
	slices.SortFunc(prov, func(x, y provenance) int { return strings.Compare(x.field, y.field) })
	return out, prov
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// idMap maps the member ids the batch knows to their canonical ids, where they differ: built once
// per batch, since every entity's references are looked up in it.
func (rv *resolver) idMap() map[string]string {
	ids := map[string]string{}
	for _, m := range rv.members {
		if m.id != m.canonical {
			ids[m.id.String()] = m.canonical.String()
		}
	}
	return ids
}

// remapFKs points the foreign keys of an object and of the objects nested in it to canonical ids,
// and says whether it changed any.
func remapFKs(obj map[string]any, ids map[string]string) bool {
	if len(ids) == 0 {
		return false
	}
	changed := false
	for _, k := range fkFields {
		if s, ok := obj[k].(string); ok {
			if c, ok := ids[s]; ok {
				obj[k] = c
				changed = true
			}
		}
	}
	for _, v := range obj {
		if items, ok := v.([]any); ok {
			for _, it := range items {
				if o, ok := it.(map[string]any); ok && remapFKs(o, ids) {
					changed = true
				}
			}
		}
	}
	return changed
}

// provenance says which member gave a canonical field.
type provenance struct {
	field  string
	source string
	seenAt time.Time
}

// refresh re-encodes an entity after its fields changed.
func (e *entity) refresh() error {
	ne, err := newEntity(e.typ, e.id, e.localID, e.fields)
	if err != nil {
		return err
	}
	e.doc, e.hash = ne.doc, ne.hash
	return nil
}

// remaining returns the canonical service that a deleted service record leaves behind when other
// members still make it up, with the source of the member it is named after, or nil when it was
// the last.
func (rv *resolver) remaining(k srcKey) (*entity, string, error) {
	memberID := CanonicalID(EntityService, k.source, k.externalID)
	m := rv.members[memberID]
	if m == nil {
		return nil, "", nil
	}
	rv.gone[memberID] = struct{}{}
	canonical := m.canonical
	delete(rv.clusters[canonical], memberID)
	delete(rv.members, memberID)
	set := rv.clusters[canonical]
	if len(set) == 0 {
		return nil, "", nil
	}
	fields, prov := rv.survivor(set, rv.idMap())
	fields["id"] = canonical.String()
	var rest *member
	for id := range set {
		if rest == nil || compareIDs(id, rest.id) < 0 {
			rest = rv.members[id]
		}
	}
	e, err := newEntity(EntityService, canonical, rest.localID, fields)
	if err != nil {
		return nil, "", err
	}
	if len(set) > 1 {
		e.provenance = prov
	}
	org, _ := fields["organization_id"].(string)
	orgID, _ := uuid.Parse(org)
	e.organizationID = orgID
	return e, rest.source, nil
}

// forgetCanonical drops the members of canonical entities that were deleted.
func (rv *resolver) forgetCanonical(ids []uuid.UUID) {
	for _, id := range ids {
		for m := range rv.clusters[id] {
			rv.gone[m] = struct{}{}
			delete(rv.members, m)
		}
		delete(rv.clusters, id)
	}
}

// queueWrites adds the resolution rows to the write batch.
func (rv *resolver) queueWrites(b *pgx.Batch, now time.Time) {
	var ids, canon []uuid.UUID
	var types, sources, locals, docs, feats, keys []string
	var seen []time.Time
	for _, m := range rv.members {
		if !m.dirty {
			continue
		}
		if _, g := rv.gone[m.id]; g {
			continue
		}
		fb, _ := json.Marshal(&m.features) // plain strings and numbers: cannot fail
		ids, canon = append(ids, m.id), append(canon, m.canonical)
		types, sources, locals = append(types, m.typ), append(sources, m.source), append(locals, m.localID)
		docs, feats = append(docs, string(m.doc)), append(feats, string(fb))
		keys = append(keys, strings.Join(m.features.Keys(), termSep))
		seen = append(seen, m.seenAt)
	}
	if len(ids) > 0 {
		b.Queue(`
			INSERT INTO catalog_members (member_id, entity_type, source, local_id, canonical_id, doc, features, keys, seen_at)
			SELECT u.id, u.typ, u.source, u.local, u.canonical, u.doc::jsonb, u.features::json,
			       CASE WHEN u.keys = '' THEN '{}' ELSE string_to_array(u.keys, E'\x1f') END, u.seen
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
			  AS u(id, typ, source, local, canonical, doc, features, keys, seen)
			ON CONFLICT (member_id) DO UPDATE SET canonical_id = excluded.canonical_id, doc = excluded.doc,
			  features = excluded.features, keys = excluded.keys, seen_at = excluded.seen_at`,
			idArgs(ids), types, sources, locals, idArgs(canon), docs, feats, keys, seen)
	}
	if len(rv.gone) > 0 {
		gone := make([]uuid.UUID, 0, len(rv.gone))
		for id := range rv.gone {
			gone = append(gone, id)
		}
		b.Queue(`DELETE FROM catalog_members WHERE member_id = ANY ($1)`, idArgs(gone))
	}
	if len(rv.merges) > 0 {
		// One statement for the batch's merges: their members arrays travel as text, since pgx
		// cannot send ragged arrays.
		n := len(rv.merges)
		types, members, matched := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		winners, losers, scores := make([][16]byte, 0, n), make([][16]byte, 0, n), make([]float64, 0, n)
		for _, mg := range rv.merges {
			types, winners, losers, scores = append(types, mg.typ), append(winners, mg.winner), append(losers, mg.loser), append(scores, mg.score)
			members = append(members, strings.Join(idStrings(mg.members), termSep))
			matched = append(matched, strings.Join(mg.matched, termSep))
		}
		b.Queue(`INSERT INTO catalog_merges (entity_type, winner, loser, members, how, score, matched, merged_at)
			SELECT u.typ, u.winner, u.loser, string_to_array(u.members, E'\x1f')::uuid[], 'auto', u.score,
			       CASE WHEN u.matched = '' THEN '{}' ELSE string_to_array(u.matched, E'\x1f') END, $7
			FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::float8[], $6::text[])
			  AS u(typ, winner, loser, members, score, matched)`, types, winners, losers, members, scores, matched, now)
	}
	if len(rv.reviews) > 0 {
		n := len(rv.reviews)
		types, members, candidates := make([]string, 0, n), make([]uuid.UUID, 0, n), make([]uuid.UUID, 0, n)
		scores, matched := make([]float64, 0, n), make([]string, 0, n)
		for _, r := range rv.reviews {
			types, members, candidates = append(types, r.typ), append(members, r.member), append(candidates, r.candidate)
			scores, matched = append(scores, r.score), append(matched, strings.Join(r.matched, termSep))
		}
		// One statement for the batch's review items (a thousand listings leave ~100), in order.
		b.Queue(`INSERT INTO catalog_review (entity_type, member_id, candidate_id, score, matched, created_at)
			SELECT u.typ, u.member, u.candidate, u.score,
			       CASE WHEN u.matched = '' THEN '{}' ELSE string_to_array(u.matched, E'\x1f') END, $6
			FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::float8[], $5::text[]) WITH ORDINALITY
			  AS u(typ, member, candidate, score, matched, n)
			ORDER BY u.n
			ON CONFLICT (member_id, candidate_id) DO NOTHING`, types, idArgs(members), idArgs(candidates), scores, matched, now)
	}
}

// provenanceEntries are the HSDS metadata entries saying which source gave each field.
func provenanceEntries(id uuid.UUID, typ string, version int64, prov []provenance) []metadataEntry {
	out := make([]metadataEntry, len(prov))
	for i, p := range prov {
		out[i] = metadataEntry{
			ID:             uuid.NewSHA1(idNamespace, fmt.Appendf(nil, "metadata/%s/%d/%s", id, version, p.field)).String(),
			ResourceID:     id.String(),
			ResourceType:   typ,
			LastActionDate: p.seenAt.UTC().Format(time.RFC3339),
			LastActionType: "survivorship",
			FieldName:      p.field,
			UpdatedBy:      p.source,
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
