package catalog

import (
	"embed"
	"encoding/json"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/match"
	"socialhub/internal/store"
)

// Entity types of the catalog, as in Change.EntityType and Count.
const (
	EntityService           = "service"
	EntityOrganization      = "organization"
	EntityLocation          = "location"
	EntityServiceAtLocation = "service_at_location"
	EntityFunding           = "funding"
)

// Ops of a source record.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Ops of a change.
const (
	ChangeCreated = "created"
	ChangeUpdated = "updated"
	ChangeDeleted = "deleted"
)

// CountSourceRecords is the key of Count's result that counts source records.
const CountSourceRecords = "source_records"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "catalog", FS: sub}
}

// idNamespace is the UUIDv5 namespace of canonical ids. Changing it changes every id: never do.
var idNamespace = uuid.MustParse("5c0c1a1b-8f0e-5e3a-9d4c-7a61c0a7b2e1")

// CanonicalID returns the canonical id of an object: the UUIDv5 of "<entity type>/<source>/<local
// id>". Every canonical id of the catalog comes from here, so that cross-source de-duplication can
// later redirect ids in one place.
func CanonicalID(entityType, source, localID string) uuid.UUID {
	return uuid.NewSHA1(idNamespace, []byte(entityType+"/"+source+"/"+localID))
}

// Store reads and writes the catalog.
type Store struct {
	pool  *pgxpool.Pool
	cfg   match.Config
	feats *featureCache
}

// Option configures a Store.
type Option func(*Store)

// WithResolution sets the weights, thresholds and source trust of entity resolution (default
// match.DefaultConfig()). The config must pass its Validate.
func WithResolution(cfg match.Config) Option { return func(s *Store) { s.cfg = cfg } }

// NewStore returns the catalog on pool.
func NewStore(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, cfg: match.DefaultConfig(), feats: newFeatureCache()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Record is a source record as the resolve stage hands it over.
type Record struct {
	Source     string // source name, e.g. "dszn-points"
	ExternalID string // the record's id at the source (== Doc.id for a service document)
	// EntityType is what Doc is: EntityService (also when empty) — a service with its
	// organization and service_at_locations nested — or EntityOrganization — an organization with
	// its funding, as grant lists send. A delete needs none: the stored record says what it was.
	EntityType  string
	Op          string          // OpUpsert or OpDelete
	ContentHash string          // sha256 hex of the canonical JSON of Doc (computed upstream)
	Doc         json.RawMessage // the record document; nil for delete
	SeenAt      time.Time
}

// Change is what Apply did to one canonical entity.
type Change struct {
	EntityType    string          // EntityService, EntityOrganization, EntityLocation, EntityServiceAtLocation, EntityFunding
	EntityID      string          // canonical id
	Op            string          // ChangeCreated, ChangeUpdated or ChangeDeleted
	Version       int64           // per-entity version, starts at 1, +1 on each change, never goes back
	Doc           json.RawMessage // canonical HSDS document of the entity after the change (nil for deleted)
	ChangedFields []string        // top-level fields that changed, for ChangeUpdated, sorted
}

// ServiceFilter selects services; the filters are cumulative. Page starts at 1.
type ServiceFilter struct {
	Search         string // full text, websearch syntax, Russian stemming
	TaxonomyTermID string
	OrganizationID string // canonical id
	ModifiedAfter  time.Time
	Page, PerPage  int
}

// OrganizationFilter selects organizations; the filters are cumulative. Page starts at 1.
type OrganizationFilter struct {
	Search        string
	ModifiedAfter time.Time
	Page, PerPage int
}

// Paging limits.
const (
	DefaultPerPage = 50
	MaxPerPage     = 500
)

// Page is an HSDS page of results.
type Page struct {
	TotalItems int               `json:"total_items"`
	TotalPages int               `json:"total_pages"`
	PageNumber int               `json:"page_number"`
	Size       int               `json:"size"`
	FirstPage  bool              `json:"first_page"`
	LastPage   bool              `json:"last_page"`
	Empty      bool              `json:"empty"`
	Contents   []json.RawMessage `json:"contents"`
}
