package schemas

import (
	"embed"
	"io/fs"
)

// Entity names accepted by the validator.
const (
	EntityService           = "service"
	EntityOrganization      = "organization"
	EntityLocation          = "location"
	EntityServiceAtLocation = "service_at_location"
	// EntityResident is a resident of the residents' registry, keyed by pseudonym (a city
	// addition, not HSDS); the resolve stage sends it to the eligibility store, not the catalog.
	EntityResident = "resident"
	// EntityApplicationEvent is a status event of an application from a department's system (a
	// city addition); the resolve stage sends it to internal/cases.
	EntityApplicationEvent = "application_event"
)

// baseURL prefixes every schema's $id, followed by the version ("v1/service.json", see versions.go);
// relative $refs between the files resolve against it, inside one version.
const baseURL = "https://socialhub.city/schemas/hsds-3.0/"

// profileFiles are the schema files of the profile, in no particular order.
var profileFiles = []string{
	"service.json", "organization.json", "location.json", "service_at_location.json", "address.json",
	"phone.json", "schedule.json", "attribute.json", "taxonomy_term.json", "organization_identifier.json",
	"metadata.json", "resident.json", "funding.json", "application_event.json",
}

// entities are the names Validate accepts.
var entities = []string{EntityService, EntityOrganization, EntityLocation, EntityServiceAtLocation, EntityResident, EntityApplicationEvent}

//go:embed *.json v*/*.json
var files embed.FS

// FS returns the embedded files: the profile schemas (version 1 at the top, later versions' changes
// in v2/, ...), taxonomy.json and districts.json.
func FS() fs.FS { return files }

// SchemaID returns the $id of the current version of the profile schema of entity (the CloudEvents
// dataschema), or "" when the profile has no schema by that name.
func SchemaID(entity string) string { return SchemaIDVersion(entity, CurrentVersion) }
