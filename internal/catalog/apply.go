package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"socialhub/internal/rawjson"
)

// Apply applies a batch of source records inside the caller's transaction and returns the changes
// it made, in order: for an upserted service record its organization, locations, service, then its
// service_at_locations (created or updated, then deleted); for a deleted one its
// service_at_locations, then the service. For an upserted organization record (a grant list's row)
// its organization, then its funding (created or updated, then deleted); for a deleted one its
// funding. Last come the organizations that organization records left without any reference (see
// sweepOrganizations). A record whose ContentHash equals the stored one changes nothing and yields
// no change, and so does an entity whose canonical doc did not change.
//
// It costs three round trips per batch whatever its size: read the stored record hashes, read the
// stored state of the entities involved, write everything. A record Apply refuses makes it fail
// with ErrInvalidRecord before anything is written.
func (s *Store) Apply(ctx context.Context, tx pgx.Tx, recs []Record) ([]Change, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	for i := range recs {
		if err := checkRecord(&recs[i]); err != nil {
			return nil, err
		}
	}
	a := newApplier(time.Now().UTC())
	if err := a.loadSources(ctx, tx, recs); err != nil {
		return nil, err
	}
	// A replay needs no parsing, unless an earlier record of the batch changed what is stored.
	todo := make([]int, 0, len(recs))
	seen := make(map[srcKey]bool, len(recs))
	for i := range recs {
		r := &recs[i]
		k := srcKey{r.Source, r.ExternalID}
		dup := seen[k]
		seen[k] = true
		if r.Op != OpUpsert {
			continue
		}
		if stored, ok := a.srcHash[k]; ok && stored == r.ContentHash && !dup {
			continue
		}
		todo = append(todo, i)
	}
	canon, err := canonicalizeAll(recs, todo)
	if err != nil {
		return nil, err
	}
	a.rv = s.newResolver()
	if err := a.resolve(ctx, tx, recs, canon); err != nil {
		return nil, err
	}
	if err := a.loadEntities(ctx, tx, recs, canon); err != nil {
		return nil, err
	}
	for i := range recs {
		if err := a.apply(&recs[i], canon[i]); err != nil {
			return nil, err
		}
	}
	a.sweepOrganizations()
	if err := a.write(ctx, tx); err != nil {
		return nil, err
	}
	return a.changes, nil
}

// newApplier returns the empty state of one Apply (or one merge or split) at now.
func newApplier(now time.Time) *applier {
	return &applier{
		now:        now,
		states:     map[uuid.UUID]*entState{},
		salsOf:     map[uuid.UUID]map[uuid.UUID]struct{}{},
		writes:     map[uuid.UUID]*pendingWrite{},
		deletes:    map[uuid.UUID]pendingDelete{},
		untomb:     map[uuid.UUID]struct{}{},
		srcHash:    map[srcKey]string{},
		srcType:    map[srcKey]string{},
		srcOrg:     map[srcKey]uuid.UUID{},
		fundOf:     map[srcKey]map[uuid.UUID]struct{}{},
		orgRefs:    map[uuid.UUID]map[srcKey]struct{}{},
		orgServed:  map[uuid.UUID]bool{},
		candidates: map[uuid.UUID]struct{}{},
		orgName:    map[uuid.UUID]any{},
		srcWrites:  map[srcKey]srcWrite{},
		srcDeletes: map[srcKey]struct{}{},
	}
}

// parallelMin is the number of records to parse below which one goroutine does it all.
const parallelMin = 64

// canonicalizeAll canonicalizes recs[i] for each i in todo, on every core for large batches (the
// work is JSON decoding and encoding). On failure it returns the error of the first bad record.
func canonicalizeAll(recs []Record, todo []int) ([]*canonRecord, error) {
	canon := make([]*canonRecord, len(recs))
	errs := make([]error, len(recs))
	workers := min(runtime.GOMAXPROCS(0), (len(todo)+parallelMin-1)/parallelMin)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := w; j < len(todo); j += workers {
				i := todo[j]
				canon[i], errs[i] = canonicalize(&recs[i])
			}
		})
	}
	wg.Wait()
	for _, i := range todo {
		if errs[i] != nil {
			return nil, errs[i]
		}
	}
	return canon, nil
}

func checkRecord(r *Record) error {
	switch {
	case r.Source == "":
		return fmt.Errorf("%w: record %q has no source", ErrInvalidRecord, r.ExternalID)
	case r.ExternalID == "":
		return fmt.Errorf("%w: a record of %s has no external id", ErrInvalidRecord, r.Source)
	case r.Op == OpDelete:
		return nil
	case r.Op != OpUpsert:
		return fmt.Errorf("%w: %s/%s: unknown op %q", ErrInvalidRecord, r.Source, r.ExternalID, r.Op)
	case r.EntityType != "" && r.EntityType != EntityService && r.EntityType != EntityOrganization:
		return fmt.Errorf("%w: %s/%s: the catalog takes service and organization records, not %q", ErrInvalidRecord, r.Source, r.ExternalID, r.EntityType)
	case len(r.Doc) == 0:
		return fmt.Errorf("%w: %s/%s: upsert without a document", ErrInvalidRecord, r.Source, r.ExternalID)
	case r.ContentHash == "":
		return fmt.Errorf("%w: %s/%s: upsert without a content hash", ErrInvalidRecord, r.Source, r.ExternalID)
	}
	return nil
}

type srcKey struct{ source, externalID string }

type srcWrite struct {
	hash       string
	entityType string
	serviceID  uuid.UUID // service records
	orgID      uuid.UUID // organization records
	seenAt     time.Time
}

// entState is what the batch knows of an entity: loaded from the database, then kept current as
// the batch's records apply, so that several records touching one entity chain correctly.
type entState struct {
	exists     bool
	hash       string
	version    int64          // the last version, a deleted entity's included
	oldDoc     []byte         // stored doc, loaded only when a record of the batch may change it
	fields     map[string]any // current fields, once known
	serviceID  uuid.UUID      // service_at_locations: the service it belongs to
	tombstoned bool           // a catalog_tombstones row exists
	record     srcKey         // funding: the source record listing it
	source     string         // service_at_locations: the source that lists it
}

type pendingWrite struct {
	e       *entity
	source  string
	doc     []byte // e.doc with metadata
	version int64
}

type pendingDelete struct {
	typ     string
	version int64
}

type applier struct {
	now        time.Time
	states     map[uuid.UUID]*entState
	salsOf     map[uuid.UUID]map[uuid.UUID]struct{} // service id → its service_at_locations
	writes     map[uuid.UUID]*pendingWrite
	deletes    map[uuid.UUID]pendingDelete
	untomb     map[uuid.UUID]struct{} // re-created entities whose tombstone goes
	srcHash    map[srcKey]string      // stored content hash of each source record of the batch
	srcType    map[srcKey]string      // what each stored source record of the batch is
	srcOrg     map[srcKey]uuid.UUID   // the organization of each organization record
	srcWrites  map[srcKey]srcWrite
	srcDeletes map[srcKey]struct{}
	changes    []Change
	rv         *resolver

	fundOf     map[srcKey]map[uuid.UUID]struct{} // organization record → the funding it lists
	orgRefs    map[uuid.UUID]map[srcKey]struct{} // organization → the organization records naming it
	orgServed  map[uuid.UUID]bool                // organization → some service references it
	candidates map[uuid.UUID]struct{}            // organizations that may have lost their last reference

	// The services' org_name (search) follows their organization's name. A service the batch
	// writes carries the name itself (or takes the stored one, see entity.orgNameUnknown); the
	// others are brought up to date in write, but only for the organizations whose name the batch
	// changed (orgName keeps the name each had before the batch): an organization rewritten for
	// another field must not cost a scan of all its services.
	orgName map[uuid.UUID]any
}

func (a *applier) loadSources(ctx context.Context, tx pgx.Tx, recs []Record) error {
	sources := make([]string, len(recs))
	ids := make([]string, len(recs))
	for i, r := range recs {
		sources[i], ids[i] = r.Source, r.ExternalID
	}
	rows, err := tx.Query(ctx, `
		SELECT r.source, r.external_id, r.content_hash, r.entity_type, r.organization_id
		FROM catalog_source_records r
		JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS u(source, external_id)) u
		  USING (source, external_id)`, sources, ids)
	if err != nil {
		return fmt.Errorf("error reading source records: %w", err)
	}
	var k srcKey
	var hash, typ string
	var org pgtype.UUID
	_, err = pgx.ForEachRow(rows, []any{&k.source, &k.externalID, &hash, &typ, &org}, func() error {
		a.srcHash[k] = hash
		a.srcType[k] = typ
		if org.Valid {
			a.srcOrg[k] = org.Bytes
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("error reading source records: %w", err)
	}
	return nil
}

// idHashes collects (id, new hash) pairs of one table for loadEntities.
type idHashes struct {
	ids    []uuid.UUID
	hashes []string
}

func (h *idHashes) add(id uuid.UUID, hash string) {
	h.ids = append(h.ids, id)
	h.hashes = append(h.hashes, hash)
}

// stateSQL reads the stored state of the given entities; the doc only where a new hash differs,
// since only then are the changed fields needed.
const stateSQL = `
	SELECT t.id, t.content_hash, t.version, CASE WHEN t.content_hash = ALL (n.hashes) THEN NULL ELSE t.doc END %s
	FROM %s t
	JOIN (SELECT id, array_agg(h) AS hashes FROM unnest($1::uuid[], $2::text[]) AS u(id, h) GROUP BY id) n
	  USING (id)`

func (a *applier) loadEntities(ctx context.Context, tx pgx.Tx, recs []Record, canon []*canonRecord) error {
	var orgs, locs, svcs, sals, funds idHashes
	var orgRecSources, orgRecIDs []string // organization records of the batch, stored or not
	for i, cr := range canon {
		r := &recs[i]
		k := srcKey{r.Source, r.ExternalID}
		if a.srcType[k] == EntityOrganization || (cr != nil && cr.service == nil) {
			orgRecSources, orgRecIDs = append(orgRecSources, r.Source), append(orgRecIDs, r.ExternalID)
			if old, ok := a.srcOrg[k]; ok {
				// The record may leave its organization (deleted, or another INN): it may be the last.
				a.candidates[old] = struct{}{}
				orgs.add(old, "")
			}
		}
		if cr == nil {
			if r.Op == OpDelete && a.srcType[k] != EntityOrganization {
				svcs.add(a.rv.deleteTarget[k], "")
			}
			continue
		}
		orgs.add(cr.org.id, cr.org.hash)
		for _, f := range cr.funding {
			funds.add(f.id, f.hash)
		}
		if cr.service == nil {
			continue
		}
		for _, l := range cr.locations {
			locs.add(l.id, l.hash)
		}
		svcs.add(cr.service.id, cr.service.hash)
		for _, s := range cr.sals {
			sals.add(s.id, s.hash)
		}
	}
	if len(svcs.ids) == 0 && len(orgs.ids) == 0 {
		return nil // the whole batch is replays
	}
	b := &pgx.Batch{}
	// Organizations and locations are shared by records of every partition, and so by concurrent
	// transactions, and so are services several sources' records make up: serialize those that
	// touch the same ones before reading their state, or two would both create (or both bump to the
	// same version) the same entity. See lockBuckets. resolve took most of these already (a lock
	// held is taken again at no cost).
	b.Queue(`SELECT count(pg_advisory_xact_lock($1::int, k)) FROM unnest($2::int[]) AS k`,
		sharedLockSpace, lockBuckets(orgs.ids, locs.ids, svcs.ids))
	scanState := func(row pgx.Rows, st *entState, id *uuid.UUID, extra ...any) error {
		return row.Scan(append([]any{(*[16]byte)(id), &st.hash, &st.version, &st.oldDoc}, extra...)...)
	}
	queueState := func(table string, set idHashes, withService bool) {
		extra := ""
		if withService {
			extra = ", t.service_id"
		}
		b.Queue(fmt.Sprintf(stateSQL, extra, table), idArgs(set.ids), set.hashes).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				st := &entState{exists: true}
				var err error
				if withService {
					err = scanState(rows, st, &id, (*[16]byte)(&st.serviceID))
				} else {
					err = scanState(rows, st, &id)
				}
				if err != nil {
					return err
				}
				a.states[id] = st
				if withService {
					a.member(st.serviceID, id)
				}
			}
			return rows.Err()
		})
	}
	queueState("catalog_organizations", orgs, false)
	if len(locs.ids) > 0 {
		queueState("catalog_locations", locs, false)
	}
	if len(svcs.ids) > 0 {
		queueState("catalog_services", svcs, false)
	}
	if len(sals.ids) > 0 {
		queueState("catalog_service_at_locations", sals, true)
	}
	if len(orgRecIDs) > 0 {
		a.queueOrganizationState(b, funds, orgRecSources, orgRecIDs)
	}
	// Every service_at_location of the services involved: the ones a record no longer lists go.
	b.Queue(`SELECT id, service_id, content_hash, version, source FROM catalog_service_at_locations WHERE service_id = ANY ($1)`,
		idArgs(svcs.ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, svc uuid.UUID
			var hash, source string
			var version int64
			if err := rows.Scan((*[16]byte)(&id), (*[16]byte)(&svc), &hash, &version, &source); err != nil {
				return err
			}
			if st, known := a.states[id]; !known {
				a.states[id] = &entState{exists: true, hash: hash, version: version, serviceID: svc, source: source}
			} else {
				st.source = source
			}
			a.member(svc, id)
		}
		return rows.Err()
	})
	tombIDs := slices.Concat(svcs.ids, sals.ids, orgs.ids, funds.ids)
	b.Queue(`SELECT id, version FROM catalog_tombstones WHERE id = ANY ($1)`, idArgs(tombIDs)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			var version int64
			if err := rows.Scan((*[16]byte)(&id), &version); err != nil {
				return err
			}
			if st, ok := a.states[id]; ok {
				st.tombstoned = true // re-created since (not expected: a re-created entity loses its tombstone)
				continue
			}
			a.states[id] = &entState{version: version, tombstoned: true}
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("error reading catalog state: %w", err)
	}
	return nil
}

func (a *applier) member(serviceID, salID uuid.UUID) {
	set := a.salsOf[serviceID]
	if set == nil {
		set = map[uuid.UUID]struct{}{}
		a.salsOf[serviceID] = set
	}
	set[salID] = struct{}{}
}

func (a *applier) state(id uuid.UUID) *entState {
	st := a.states[id]
	if st == nil {
		st = &entState{}
		a.states[id] = st
	}
	return st
}

func (a *applier) apply(r *Record, cr *canonRecord) error {
	k := srcKey{r.Source, r.ExternalID}
	if r.Op == OpDelete && a.srcType[k] == EntityOrganization {
		a.deleteOrganizationRecord(k)
		return nil
	}
	if r.Op == OpUpsert && r.EntityType == EntityOrganization {
		return a.upsertOrganizationRecord(r, cr)
	}
	if r.Op == OpDelete {
		if err := a.deleteServiceRecord(k); err != nil {
			return err
		}
		delete(a.srcHash, k)
		delete(a.srcWrites, k)
		a.srcDeletes[k] = struct{}{}
		return nil
	}
	if stored, ok := a.srcHash[k]; ok && stored == r.ContentHash {
		return nil
	}
	if err := a.upsert(r.Source, cr.org); err != nil {
		return err
	}
	a.orgServed[cr.org.id] = true
	for _, l := range cr.locations {
		if err := a.upsert(r.Source, l); err != nil {
			return err
		}
	}
	if err := a.upsert(r.Source, cr.service); err != nil {
		return err
	}
	listed := make(map[uuid.UUID]struct{}, len(cr.sals))
	for _, s := range cr.sals {
		listed[s.id] = struct{}{}
		if err := a.upsert(r.Source, s); err != nil {
			return err
		}
	}
	// Only this source's: the other sources that make up the same canonical service list their own.
	a.removeSALs(cr.service.id, r.Source, listed)
	a.srcHash[k] = r.ContentHash
	seen := r.SeenAt
	if seen.IsZero() {
		seen = a.now
	}
	a.srcWrites[k] = srcWrite{hash: r.ContentHash, entityType: EntityService, serviceID: cr.service.id, seenAt: seen}
	a.srcType[k] = EntityService
	delete(a.srcDeletes, k)
	return nil
}

func compareIDs(x, y uuid.UUID) int { return bytes.Compare(x[:], y[:]) }

// idArgs converts ids for pgx, which encodes [16]byte as uuid directly (uuid.UUID goes through a
// slow path of driver.Valuer attempts).
func idArgs(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func (a *applier) upsert(source string, e *entity) error {
	st := a.state(e.id)
	if st.exists && st.hash == e.hash {
		return nil
	}
	ch := Change{EntityType: e.typ, EntityID: e.id.String(), Op: ChangeCreated, Version: st.version + 1}
	meta := metadataEntry{
		ID:             metadataID(e.id, ch.Version),
		ResourceID:     ch.EntityID,
		ResourceType:   e.typ,
		LastActionDate: a.now.Format(time.RFC3339),
		LastActionType: "create",
		FieldName:      "*",
		UpdatedBy:      source,
	}
	if st.exists {
		old, err := st.currentFields()
		if err != nil {
			return fmt.Errorf("error reading stored %s %s: %w", e.typ, e.id, err)
		}
		if e.typ == EntityOrganization {
			if _, ok := a.orgName[e.id]; !ok {
				a.orgName[e.id] = old["name"]
			}
		}
		ch.Op = ChangeUpdated
		ch.ChangedFields = changedFields(old, e.fields)
		meta.LastActionType = "update"
		meta.FieldName = strings.Join(ch.ChangedFields, ",")
	}
	doc, err := withMetadata(e.doc, append([]metadataEntry{meta}, provenanceEntries(e.id, e.typ, ch.Version, e.provenance)...))
	if err != nil {
		return fmt.Errorf("error encoding metadata of %s %s: %w", e.typ, e.id, err)
	}
	ch.Doc = doc
	if e.typ == EntityServiceAtLocation {
		st.source = source
		if st.exists && st.serviceID != e.serviceID {
			delete(a.salsOf[st.serviceID], e.id)
		}
		a.member(e.serviceID, e.id)
		st.serviceID = e.serviceID
	}
	if !st.exists && st.tombstoned {
		a.untomb[e.id] = struct{}{}
	}
	st.exists, st.hash, st.version, st.fields, st.oldDoc = true, e.hash, ch.Version, e.fields, nil
	a.writes[e.id] = &pendingWrite{e: e, source: source, doc: doc, version: ch.Version}
	delete(a.deletes, e.id)
	a.changes = append(a.changes, ch)
	return nil
}

// deleteService removes a service and its service_at_locations; organizations and locations stay,
// since other services may use them.
func (a *applier) deleteService(id uuid.UUID) {
	if st := a.states[id]; st == nil || !st.exists {
		return
	}
	sals := make([]uuid.UUID, 0, len(a.salsOf[id]))
	for sal := range a.salsOf[id] {
		sals = append(sals, sal)
	}
	slices.SortFunc(sals, compareIDs)
	for _, sal := range sals {
		a.remove(sal, EntityServiceAtLocation)
	}
	a.remove(id, EntityService)
}

func (a *applier) remove(id uuid.UUID, typ string) {
	st := a.state(id)
	if !st.exists {
		return
	}
	version := st.version + 1
	if typ == EntityServiceAtLocation {
		delete(a.salsOf[st.serviceID], id)
	}
	if typ == EntityFunding {
		delete(a.fundOf[st.record], id)
	}
	st.exists, st.hash, st.version, st.fields, st.oldDoc, st.tombstoned = false, "", version, nil, nil, true
	delete(a.writes, id)
	delete(a.untomb, id)
	a.deletes[id] = pendingDelete{typ: typ, version: version}
	a.changes = append(a.changes, Change{EntityType: typ, EntityID: id.String(), Op: ChangeDeleted, Version: version})
}

func (st *entState) currentFields() (map[string]any, error) {
	if st.fields != nil {
		return st.fields, nil
	}
	fields := map[string]any{}
	if len(st.oldDoc) > 0 {
		if err := json.Unmarshal(st.oldDoc, &fields); err != nil {
			return nil, err
		}
	}
	st.fields = fields
	return fields, nil
}

// changedFields lists the top-level fields whose values differ, sorted; metadata is the hub's own
// bookkeeping and does not count.
func changedFields(old, cur map[string]any) []string {
	var out []string
	for k, v := range cur {
		if k == "metadata" {
			continue
		}
		if ov, ok := old[k]; !ok || !reflect.DeepEqual(ov, v) {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok && k != "metadata" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// metadataEntry is an HSDS metadata object: the provenance of a canonical object.
type metadataEntry struct {
	ID               string `json:"id"`
	ResourceID       string `json:"resource_id"`
	ResourceType     string `json:"resource_type"`
	LastActionDate   string `json:"last_action_date"`
	LastActionType   string `json:"last_action_type"`
	FieldName        string `json:"field_name"`
	PreviousValue    string `json:"previous_value"`
	ReplacementValue string `json:"replacement_value"`
	UpdatedBy        string `json:"updated_by"`
}

func metadataID(entityID uuid.UUID, version int64) string {
	return uuid.NewSHA1(idNamespace, fmt.Appendf(nil, "metadata/%s/%d", entityID, version)).String()
}

// withMetadata appends the metadata field to a marshalled object, saving a second encoding of it.
func withMetadata(doc []byte, m []metadataEntry) ([]byte, error) {
	n := len(doc) + 16
	for i := range m {
		n += m[i].size()
	}
	out := make([]byte, 0, n)
	out = append(out, doc[:len(doc)-1]...)
	if len(doc) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"metadata":`...)
	out = appendMetadata(out, m)
	return append(out, '}'), nil
}

// appendMetadata writes metadata entries as encoding/json does (fields in declaration order).
func appendMetadata(dst []byte, m []metadataEntry) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i := range m {
		e := &m[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		for _, f := range [...]struct{ key, value string }{
			{`{"id":`, e.ID}, {`,"resource_id":`, e.ResourceID}, {`,"resource_type":`, e.ResourceType},
			{`,"last_action_date":`, e.LastActionDate}, {`,"last_action_type":`, e.LastActionType},
			{`,"field_name":`, e.FieldName}, {`,"previous_value":`, e.PreviousValue},
			{`,"replacement_value":`, e.ReplacementValue}, {`,"updated_by":`, e.UpdatedBy},
		} {
			dst = append(dst, f.key...)
			dst = rawjson.AppendString(dst, f.value)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// size is about the length of an entry's JSON.
func (e *metadataEntry) size() int {
	return 160 + len(e.ID) + len(e.ResourceID) + len(e.ResourceType) + len(e.LastActionDate) + len(e.LastActionType) +
		len(e.FieldName) + len(e.PreviousValue) + len(e.ReplacementValue) + len(e.UpdatedBy)
}

// sharedLockSpace is the first key of the transaction-level advisory locks that guard shared
// entities (the two-key space does not overlap the one-key locks used elsewhere).
const sharedLockSpace int32 = 0x5348

// sharedLockBuckets bounds the advisory locks one transaction holds, whatever the batch size, so a
// batch never exhausts the server's lock table (max_locks_per_transaction); entities that share a
// bucket merely wait for each other.
const sharedLockBuckets = 256

// lockBuckets maps entity ids to their lock buckets, sorted and without repeats: every transaction
// takes its locks in ascending order, so two can never wait on each other in a cycle.
func lockBuckets(sets ...[]uuid.UUID) []int32 {
	var seen [sharedLockBuckets]bool
	for _, ids := range sets {
		for _, id := range ids {
			seen[binary.BigEndian.Uint16(id[14:])%sharedLockBuckets] = true
		}
	}
	out := make([]int32, 0, sharedLockBuckets)
	for k, ok := range seen {
		if ok {
			out = append(out, int32(k))
		}
	}
	return out
}

// queueOrganizationState reads what the organization records of the batch stand on: the stored
// state of the funding they list now, the funding they listed before, and, for each organization
// a record may leave, what else refers to it.
func (a *applier) queueOrganizationState(b *pgx.Batch, funds idHashes, sources, ids []string) {
	if len(funds.ids) > 0 {
		b.Queue(fmt.Sprintf(stateSQL, ", t.source, t.source_record", "catalog_funding"), idArgs(funds.ids), funds.hashes).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				st := &entState{exists: true}
				if err := rows.Scan((*[16]byte)(&id), &st.hash, &st.version, &st.oldDoc, &st.record.source, &st.record.externalID); err != nil {
					return err
				}
				a.states[id] = st
				a.fundingOf(st.record)[id] = struct{}{}
			}
			return rows.Err()
		})
	}
	b.Queue(`
		SELECT f.id, f.source, f.source_record, f.content_hash, f.version
		FROM catalog_funding f
		JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS u(source, source_record)) u
		  USING (source, source_record)`, sources, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			st := &entState{exists: true}
			if err := rows.Scan((*[16]byte)(&id), &st.record.source, &st.record.externalID, &st.hash, &st.version); err != nil {
				return err
			}
			if known, ok := a.states[id]; ok {
				known.record = st.record
			} else {
				a.states[id] = st
			}
			a.fundingOf(st.record)[id] = struct{}{}
		}
		return rows.Err()
	})
	if len(a.candidates) == 0 {
		return
	}
	cands := make([]uuid.UUID, 0, len(a.candidates))
	for id := range a.candidates {
		cands = append(cands, id)
	}
	b.Queue(`SELECT organization_id, source, external_id FROM catalog_source_records WHERE organization_id = ANY ($1)`,
		idArgs(cands)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var org uuid.UUID
			var k srcKey
			if err := rows.Scan((*[16]byte)(&org), &k.source, &k.externalID); err != nil {
				return err
			}
			a.refsOf(org)[k] = struct{}{}
		}
		return rows.Err()
	})
	b.Queue(`SELECT DISTINCT organization_id FROM catalog_services WHERE organization_id = ANY ($1)`,
		idArgs(cands)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var org uuid.UUID
			if err := rows.Scan((*[16]byte)(&org)); err != nil {
				return err
			}
			a.orgServed[org] = true
		}
		return rows.Err()
	})
}

func (a *applier) fundingOf(k srcKey) map[uuid.UUID]struct{} {
	set := a.fundOf[k]
	if set == nil {
		set = map[uuid.UUID]struct{}{}
		a.fundOf[k] = set
	}
	return set
}

func (a *applier) refsOf(org uuid.UUID) map[srcKey]struct{} {
	set := a.orgRefs[org]
	if set == nil {
		set = map[srcKey]struct{}{}
		a.orgRefs[org] = set
	}
	return set
}

// upsertOrganizationRecord applies a grant list's row: its organization, shared with the other
// rows naming it, and the funding the row lists; funding it listed before and no longer does goes.
func (a *applier) upsertOrganizationRecord(r *Record, cr *canonRecord) error {
	k := srcKey{r.Source, r.ExternalID}
	if stored, ok := a.srcHash[k]; ok && stored == r.ContentHash {
		return nil
	}
	if err := a.upsert(r.Source, cr.org); err != nil {
		return err
	}
	if old, ok := a.srcOrg[k]; ok && old != cr.org.id {
		delete(a.orgRefs[old], k)
		a.candidates[old] = struct{}{}
	}
	a.refsOf(cr.org.id)[k] = struct{}{}
	a.srcOrg[k] = cr.org.id
	listed := make(map[uuid.UUID]struct{}, len(cr.funding))
	for _, f := range cr.funding {
		listed[f.id] = struct{}{}
		st := a.state(f.id)
		if st.exists && st.record != k {
			// The grant moves from the record that listed it before to this one.
			delete(a.fundOf[st.record], f.id)
		}
		st.record = k
		a.fundingOf(k)[f.id] = struct{}{}
		if err := a.upsert(r.Source, f); err != nil {
			return err
		}
	}
	var stale []uuid.UUID
	for id := range a.fundOf[k] {
		if _, ok := listed[id]; !ok {
			stale = append(stale, id)
		}
	}
	slices.SortFunc(stale, compareIDs)
	for _, id := range stale {
		a.remove(id, EntityFunding)
	}
	a.srcHash[k] = r.ContentHash
	a.srcType[k] = EntityOrganization
	seen := r.SeenAt
	if seen.IsZero() {
		seen = a.now
	}
	a.srcWrites[k] = srcWrite{hash: r.ContentHash, entityType: EntityOrganization, orgID: cr.org.id, seenAt: seen}
	delete(a.srcDeletes, k)
	return nil
}

// deleteOrganizationRecord removes what a grant list's row brought: its funding. Its organization
// becomes a candidate for sweepOrganizations.
func (a *applier) deleteOrganizationRecord(k srcKey) {
	funds := make([]uuid.UUID, 0, len(a.fundOf[k]))
	for id := range a.fundOf[k] {
		funds = append(funds, id)
	}
	slices.SortFunc(funds, compareIDs)
	for _, id := range funds {
		a.remove(id, EntityFunding)
	}
	if org, ok := a.srcOrg[k]; ok {
		delete(a.orgRefs[org], k)
		a.candidates[org] = struct{}{}
	}
	delete(a.srcOrg, k)
	delete(a.srcType, k)
	delete(a.srcHash, k)
	delete(a.srcWrites, k)
	a.srcDeletes[k] = struct{}{}
}

// sweepOrganizations deletes the organizations that organization records left and that nothing
// refers to any more: no organization record names them (so no funding is theirs) and no service
// is theirs. An organization that a service record brought, or that services still use, stays, as
// service deletes always left organizations: other services may use them.
func (a *applier) sweepOrganizations() {
	ids := make([]uuid.UUID, 0, len(a.candidates))
	for id := range a.candidates {
		if len(a.orgRefs[id]) == 0 && !a.orgServed[id] {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareIDs)
	for _, id := range ids {
		a.remove(id, EntityOrganization)
	}
	a.rv.forgetCanonical(ids)
}

// removeSALs removes the service_at_locations of a service that source lists and no longer
// lists (keep), sorted.
func (a *applier) removeSALs(serviceID uuid.UUID, source string, keep map[uuid.UUID]struct{}) {
	var stale []uuid.UUID
	for id := range a.salsOf[serviceID] {
		if _, ok := keep[id]; ok {
			continue
		}
		if st := a.states[id]; st != nil && st.source != "" && st.source != source {
			continue
		}
		stale = append(stale, id)
	}
	slices.SortFunc(stale, compareIDs)
	for _, id := range stale {
		a.remove(id, EntityServiceAtLocation)
	}
}

// deleteServiceRecord removes what a deleted service record brought: its canonical service goes
// with it when it was its last member; otherwise the service stays, made up of the rest, without
// the service_at_locations this source listed.
func (a *applier) deleteServiceRecord(k srcKey) error {
	target, ok := a.rv.deleteTarget[k]
	if !ok {
		target = CanonicalID(EntityService, k.source, k.externalID)
	}
	rest, source, err := a.rv.remaining(k)
	if err != nil {
		return err
	}
	if rest == nil {
		a.deleteService(target)
		a.rv.forgetCanonical([]uuid.UUID{target})
		return nil
	}
	if st := a.states[target]; st == nil || !st.exists {
		return nil
	}
	a.removeSALs(target, k.source, nil)
	if org := a.states[rest.organizationID]; org != nil && org.fields != nil {
		rest.orgName, _ = org.fields["name"].(string)
	} else {
		rest.orgNameUnknown = true
	}
	return a.upsert(source, rest)
}
