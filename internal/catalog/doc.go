// Package catalog owns the canonical catalog: the tables catalog_source_records,
// catalog_organizations, catalog_services, catalog_locations, catalog_service_at_locations,
// catalog_funding and catalog_tombstones, and every query on them.
//
// Apply turns source records — HSDS service record documents, or organization documents with
// their funding as grant lists send, whose ids are the source's local ids — into canonical HSDS
// 3.0 entities with stable ids (CanonicalID), versions, provenance metadata and
// the change events that describe what changed. The read methods assemble the HSDS 3.0 shapes that
// the API serves (service_full, service and organization lists, organization with its services and funding).
package catalog
