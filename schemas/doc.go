// Package schemas owns socialhub's canonical data contract: a draft-07 JSON Schema profile of HSDS 3.0
// (Open Referral's Human Services Data Specification) with the city's additions, the city's service
// taxonomy, and the reference list of Moscow's okrugs, districts and settlements. All of it is
// embedded in the binary; FS serves the files as they are.
//
// The record document that flows through the hub is an HSDS service with its organization and its
// service_at_locations nested (entity "service"). Grant lists send an HSDS organization with its
// identifiers and the grants it received in funding (entity "organization"). Validator checks documents against the profile;
// a schema's $id (SchemaID) is what an event's dataschema names.
//
// The profile follows HSDS 3.0 by the Open Referral project (CC BY-SA 4.0): field names and
// meanings are HSDS's; the city's decisions (required fields, enums, patterns, district, okrug and
// INN/OGRN identifiers) are its own. Nothing here reads the HSDS reference at run time.
package schemas
