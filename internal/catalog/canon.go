package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"socialhub/schemas"
)

// Types of nested objects, for their canonical ids.
const (
	nestedPhone      = "phone"
	nestedSchedule   = "schedule"
	nestedAttribute  = "attribute"
	nestedAddress    = "address"
	nestedIdentifier = "organization_identifier"
)

// defaultLinkType is the attribute link_type when the source gives none: the term classifies the
// object it is attached to.
const defaultLinkType = "category"

// entity is one canonical top-level entity built from a source record.
type entity struct {
	typ     string
	id      uuid.UUID
	localID string
	fields  map[string]any // the canonical doc, without metadata
	doc     []byte         // fields as JSON
	hash    string         // sha256 hex of doc

	organizationID uuid.UUID    // services
	orgName        string       // services: the organization's name, for search
	orgNameUnknown bool         // services: orgName is not known here; write takes the stored one
	serviceID      uuid.UUID    // service_at_locations
	locationID     uuid.UUID    // service_at_locations
	sourceRecord   string       // funding: the external id of the source record listing it
	provenance     []provenance // fields several members make up: which one gave each
}

// canonRecord is a source record split into its canonical entities.
type canonRecord struct {
	org       *entity
	locations []*entity // distinct, in order of first appearance
	service   *entity   // nil for an organization record
	sals      []*entity
	funding   []*entity // organization records: the grants the record lists
}

// canonicalize splits a record document into canonical entities with canonical ids and HSDS
// foreign keys. It changes nothing in the database.
func canonicalize(r *Record) (*canonRecord, error) {
	if r.EntityType == EntityOrganization {
		return canonicalizeOrganization(r)
	}
	doc, localID, err := recordDoc(r, "document")
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error { return badRecord(r, format, args...) }
	if localID != r.ExternalID {
		return nil, bad("document id %q differs from the record's external id", localID)
	}
	src := r.Source
	out := &canonRecord{}

	orgDoc, ok := doc["organization"].(map[string]any)
	if !ok {
		return nil, bad("document has no organization object")
	}
	orgLocal, _ := orgDoc["id"].(string)
	if orgLocal == "" {
		return nil, bad("organization has no id")
	}
	orgID := CanonicalID(EntityOrganization, src, orgLocal)
	// Other top-level entities never nest inside an entity's own doc; provenance is the hub's.
	delete(orgDoc, "services")
	delete(orgDoc, "locations")
	delete(orgDoc, "metadata")
	orgDoc["id"] = orgID.String()
	fk := map[string]any{"organization_id": orgID.String()}
	if err := canonNested(orgDoc, "organization_identifiers", nestedIdentifier, src, fk); err != nil {
		return nil, bad("%v", err)
	}
	if err := canonNested(orgDoc, "phones", nestedPhone, src, fk); err != nil {
		return nil, bad("%v", err)
	}
	if err := canonAttributes(orgDoc, src, orgID, EntityOrganization); err != nil {
		return nil, bad("%v", err)
	}
	orgName, _ := orgDoc["name"].(string)
	if out.org, err = newEntity(EntityOrganization, orgID, orgLocal, orgDoc); err != nil {
		return nil, bad("%v", err)
	}

	svcID := CanonicalID(EntityService, src, localID)
	salsRaw, _ := doc["service_at_locations"].([]any)
	if v, present := doc["service_at_locations"]; present && v != nil && salsRaw == nil {
		return nil, bad("service_at_locations is not an array")
	}
	delete(doc, "organization")
	delete(doc, "service_at_locations")
	delete(doc, "metadata")
	doc["id"] = svcID.String()
	doc["organization_id"] = orgID.String()
	fk = map[string]any{"service_id": svcID.String()}
	if err := canonNested(doc, "phones", nestedPhone, src, fk); err != nil {
		return nil, bad("%v", err)
	}
	if err := canonNested(doc, "schedules", nestedSchedule, src, fk); err != nil {
		return nil, bad("%v", err)
	}
	if err := canonAttributes(doc, src, svcID, EntityService); err != nil {
		return nil, bad("%v", err)
	}
	if out.service, err = newEntity(EntityService, svcID, localID, doc); err != nil {
		return nil, bad("%v", err)
	}
	out.service.organizationID = orgID
	out.service.orgName = orgName

	seenLoc := map[uuid.UUID]int{}
	for i, raw := range salsRaw {
		sal, ok := raw.(map[string]any)
		if !ok {
			return nil, bad("service_at_locations[%d] is not an object", i)
		}
		salLocal, _ := sal["id"].(string)
		if salLocal == "" {
			return nil, bad("service_at_locations[%d] has no id", i)
		}
		loc, ok := sal["location"].(map[string]any)
		if !ok {
			return nil, bad("service_at_locations[%d] has no location object", i)
		}
		locLocal, _ := loc["id"].(string)
		if locLocal == "" {
			return nil, bad("service_at_locations[%d].location has no id", i)
		}
		locID := CanonicalID(EntityLocation, src, locLocal)
		delete(loc, "metadata")
		loc["id"] = locID.String()
		fk := map[string]any{"location_id": locID.String()}
		for _, n := range []struct{ field, typ string }{
			{"addresses", nestedAddress}, {"phones", nestedPhone}, {"schedules", nestedSchedule},
		} {
			if err := canonNested(loc, n.field, n.typ, src, fk); err != nil {
				return nil, bad("service_at_locations[%d].location: %v", i, err)
			}
		}
		if err := canonAttributes(loc, src, locID, EntityLocation); err != nil {
			return nil, bad("service_at_locations[%d].location: %v", i, err)
		}
		le, err := newEntity(EntityLocation, locID, locLocal, loc)
		if err != nil {
			return nil, bad("%v", err)
		}
		if j, dup := seenLoc[locID]; dup {
			out.locations[j] = le // the same location twice in one record: the last one wins
		} else {
			seenLoc[locID] = len(out.locations)
			out.locations = append(out.locations, le)
		}

		salID := CanonicalID(EntityServiceAtLocation, src, salLocal)
		delete(sal, "location")
		delete(sal, "metadata")
		sal["id"] = salID.String()
		sal["service_id"] = svcID.String()
		sal["location_id"] = locID.String()
		fk = map[string]any{"service_at_location_id": salID.String()}
		if err := canonNested(sal, "phones", nestedPhone, src, fk); err != nil {
			return nil, bad("service_at_locations[%d]: %v", i, err)
		}
		if err := canonNested(sal, "schedules", nestedSchedule, src, fk); err != nil {
			return nil, bad("service_at_locations[%d]: %v", i, err)
		}
		if err := canonAttributes(sal, src, salID, EntityServiceAtLocation); err != nil {
			return nil, bad("service_at_locations[%d]: %v", i, err)
		}
		se, err := newEntity(EntityServiceAtLocation, salID, salLocal, sal)
		if err != nil {
			return nil, bad("%v", err)
		}
		se.serviceID, se.locationID = svcID, locID
		out.sals = append(out.sals, se)
	}
	return out, nil
}

// canonNested gives each object of parent[field] its canonical id and sets the foreign keys fk.
func canonNested(parent map[string]any, field, typ, src string, fk map[string]any) error {
	v, ok := parent[field]
	if !ok || v == nil {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%s is not an array", field)
	}
	for i, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			return fmt.Errorf("%s[%d] is not an object", field, i)
		}
		local, _ := obj["id"].(string)
		if local == "" {
			return fmt.Errorf("%s[%d] has no id", field, i)
		}
		obj["id"] = CanonicalID(typ, src, local).String()
		for k, id := range fk {
			obj[k] = id
		}
	}
	return nil
}

// canonAttributes links the attributes of an object to it and fills their taxonomy_term from the
// city taxonomy when the source gave only its id.
func canonAttributes(parent map[string]any, src string, owner uuid.UUID, ownerType string) error {
	fk := map[string]any{"link_id": owner.String(), "link_entity": ownerType}
	if err := canonNested(parent, "attributes", nestedAttribute, src, fk); err != nil {
		return err
	}
	items, _ := parent["attributes"].([]any)
	for i, it := range items {
		attr := it.(map[string]any) // canonNested checked
		if lt, _ := attr["link_type"].(string); lt == "" {
			attr["link_type"] = defaultLinkType
		}
		termID, _ := attr["taxonomy_term_id"].(string)
		if termID == "" {
			return fmt.Errorf("attributes[%d] has no taxonomy_term_id", i)
		}
		if _, ok := attr["taxonomy_term"].(map[string]any); ok {
			continue
		}
		if t, ok := schemas.TaxonomyTermByID(termID); ok {
			term := map[string]any{
				"id": t.ID, "code": t.Code, "name": t.Name, "description": t.Description,
				"taxonomy": t.Taxonomy, "language": t.Language,
			}
			if t.ParentID != "" {
				term["parent_id"] = t.ParentID
			}
			attr["taxonomy_term"] = term
		}
	}
	return nil
}

func newEntity(typ string, id uuid.UUID, localID string, fields map[string]any) (*entity, error) {
	doc, err := marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("error encoding %s %s: %w", typ, localID, err)
	}
	sum := sha256.Sum256(doc)
	return &entity{typ: typ, id: id, localID: localID, fields: fields, doc: doc, hash: hex.EncodeToString(sum[:])}, nil
}

// recordDoc decodes a record's document, which must be an object with an id (what names it in
// errors: "document", "organization").
func recordDoc(r *Record, what string) (map[string]any, string, error) {
	var doc map[string]any
	if err := json.Unmarshal(r.Doc, &doc); err != nil {
		return nil, "", fmt.Errorf("%w: %s/%s: %w", ErrInvalidRecord, r.Source, r.ExternalID, err)
	}
	if doc == nil {
		return nil, "", badRecord(r, "document is not an object")
	}
	localID, _ := doc["id"].(string)
	if localID == "" {
		return nil, "", badRecord(r, "%s has no id", what)
	}
	return doc, localID, nil
}

// badRecord is an ErrInvalidRecord naming the record.
func badRecord(r *Record, format string, args ...any) error {
	return fmt.Errorf("%w: %s/%s: %s", ErrInvalidRecord, r.Source, r.ExternalID, fmt.Sprintf(format, args...))
}

// canonicalizeOrganization splits an organization record (a grant list's row) into the
// organization and its funding. The record's external id is not the organization's id: several
// records (one per grant) name the same organization, which they share.
func canonicalizeOrganization(r *Record) (*canonRecord, error) {
	doc, localID, err := recordDoc(r, "organization")
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error { return badRecord(r, format, args...) }
	src := r.Source
	orgID := CanonicalID(EntityOrganization, src, localID)
	fundRaw, _ := doc["funding"].([]any)
	if v, present := doc["funding"]; present && v != nil && fundRaw == nil {
		return nil, bad("funding is not an array")
	}
	delete(doc, "funding")
	delete(doc, "services")
	delete(doc, "locations")
	delete(doc, "metadata")
	doc["id"] = orgID.String()
	fk := map[string]any{"organization_id": orgID.String()}
	if err := canonNested(doc, "organization_identifiers", nestedIdentifier, src, fk); err != nil {
		return nil, bad("%v", err)
	}
	if err := canonNested(doc, "phones", nestedPhone, src, fk); err != nil {
		return nil, bad("%v", err)
	}
	if err := canonAttributes(doc, src, orgID, EntityOrganization); err != nil {
		return nil, bad("%v", err)
	}
	out := &canonRecord{}
	if out.org, err = newEntity(EntityOrganization, orgID, localID, doc); err != nil {
		return nil, bad("%v", err)
	}
	seen := map[uuid.UUID]int{}
	for i, raw := range fundRaw {
		f, ok := raw.(map[string]any)
		if !ok {
			return nil, bad("funding[%d] is not an object", i)
		}
		fLocal, _ := f["id"].(string)
		if fLocal == "" {
			return nil, bad("funding[%d] has no id", i)
		}
		fID := CanonicalID(EntityFunding, src, fLocal)
		delete(f, "metadata")
		delete(f, "service_id") // a grant list funds organizations; services are the departments'
		f["id"] = fID.String()
		f["organization_id"] = orgID.String()
		if err := canonAttributes(f, src, fID, EntityFunding); err != nil {
			return nil, bad("funding[%d]: %v", i, err)
		}
		fe, err := newEntity(EntityFunding, fID, fLocal, f)
		if err != nil {
			return nil, bad("%v", err)
		}
		fe.organizationID, fe.sourceRecord = orgID, r.ExternalID
		if j, dup := seen[fID]; dup {
			out.funding[j] = fe // listed twice: the last one wins
			continue
		}
		seen[fID] = len(out.funding)
		out.funding = append(out.funding, fe)
	}
	return out, nil
}
