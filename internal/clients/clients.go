package clients

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "clients", FS: sub}
}

// Kind is what sort of party a client is; it bounds the scopes the client may hold.
type Kind string

// Kinds of clients.
const (
	KindDepartment Kind = "department" // a department's system: social offices, employment centres
	KindNGO        Kind = "ngo"        // an NGO or foundation syncing its listings
	KindApp        Kind = "app"        // a front end: the map navigator, a chat-bot, a portal
	KindOperator   Kind = "operator"   // the contact centre
	KindAdmin      Kind = "admin"      // the hub's administrators
)

// Kinds lists every kind, in the order the CLI prints them.
var Kinds = []Kind{KindDepartment, KindNGO, KindApp, KindOperator, KindAdmin}

// Scopes. A lookup scope allows one claim of POST /v1/lookups.
const (
	ScopeLookupRegisteredAddress    = "lookup:registered_address"
	ScopeLookupHouseholdComposition = "lookup:household_composition"
	ScopeLookupDisabilityStatus     = "lookup:disability_status"
	ScopeLookupPensionStatus        = "lookup:pension_status"
	ScopeLookupLowIncomeStatus      = "lookup:low_income_status"
	ScopeLookupLargeFamilyStatus    = "lookup:large_family_status"
	ScopeLookupEligibleFor          = "lookup:eligible_for"
	ScopeEligibilityRead            = "eligibility:read" // a resident's eligible services
	ScopeAuditRead                  = "audit:read"       // a resident's access history
	ScopeListingsWrite              = "listings:write"   // an NGO's own listings and feeds
	ScopeClientsAdmin               = "clients:admin"    // binding clients to organizations (claims)
	// Applications and cases (internal/cases).
	ScopeApplicationsWrite  = "applications:write"  // file an application for a resident
	ScopeApplicationsRead   = "applications:read"   // read a case with its history, list overdue cases
	ScopeApplicationsEvents = "applications:events" // a department reports the status of its cases
	ScopeCasesStatus        = "cases:status"        // a resident-facing channel asks where a case stands
)

// LookupPrefix starts every lookup scope; Require("lookup:*") accepts any of them.
const LookupPrefix = "lookup:"

// scopeKinds says which kinds may hold each scope. Registry facts go to departments only: an NGO
// or an app never learns whether a resident is a pensioner; the contact centre sees what a
// resident may use and who asked about them, not the facts.
var scopeKinds = map[string][]Kind{
	ScopeLookupRegisteredAddress:    {KindDepartment, KindAdmin},
	ScopeLookupHouseholdComposition: {KindDepartment, KindAdmin},
	ScopeLookupDisabilityStatus:     {KindDepartment, KindAdmin},
	ScopeLookupPensionStatus:        {KindDepartment, KindAdmin},
	ScopeLookupLowIncomeStatus:      {KindDepartment, KindAdmin},
	ScopeLookupLargeFamilyStatus:    {KindDepartment, KindAdmin},
	ScopeLookupEligibleFor:          {KindDepartment, KindAdmin},
	ScopeEligibilityRead:            {KindDepartment, KindOperator, KindAdmin},
	ScopeAuditRead:                  {KindOperator, KindAdmin},
	ScopeListingsWrite:              {KindNGO},
	ScopeClientsAdmin:               {KindAdmin},
	// Only the contact centre files applications; a department reads and reports on the cases
	// routed to it (internal/cases checks which); a front end learns a case's stage, nothing else.
	ScopeApplicationsWrite:  {KindOperator, KindAdmin},
	ScopeApplicationsRead:   {KindOperator, KindDepartment, KindAdmin},
	ScopeApplicationsEvents: {KindDepartment},
	ScopeCasesStatus:        {KindApp, KindOperator, KindAdmin},
}

// Scopes returns every scope, sorted.
func Scopes() []string {
	out := make([]string, 0, len(scopeKinds))
	for s := range scopeKinds {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Defaults of a client's rate limit.
const (
	DefaultRate  = 50.0
	DefaultBurst = 100
)

var purposeCode = regexp.MustCompile(`^[a-z][a-z0-9_.-]{1,63}$`)

// Client is an API client. Its token is never stored.
type Client struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Kind      Kind       `json:"kind"`
	Scopes    []string   `json:"scopes"`
	Purposes  []string   `json:"purposes"`
	Rate      float64    `json:"rate"`
	Burst     int        `json:"burst"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Organization is what an NGO client speaks for; nil while it is not bound.
	Organization *Organization `json:"organization,omitempty"`
}

// HasScope reports whether the client holds scope; "lookup:*" matches any lookup scope.
func (c Client) HasScope(scope string) bool {
	if scope == "" {
		return true
	}
	if prefix, ok := strings.CutSuffix(scope, "*"); ok {
		return slices.ContainsFunc(c.Scopes, func(s string) bool { return strings.HasPrefix(s, prefix) })
	}
	return slices.Contains(c.Scopes, scope)
}

// MayDeclare reports whether the client may declare purpose.
func (c Client) MayDeclare(purpose string) bool { return slices.Contains(c.Purposes, purpose) }

// Organization binds an NGO client to the organization it speaks for: its listings are published
// under these identifiers, whatever their documents say.
type Organization struct {
	// ID is the canonical catalog id the client claimed ("" when bound by identifiers only).
	ID   string `json:"id,omitempty"`
	INN  string `json:"inn,omitempty"`
	OGRN string `json:"ogrn,omitempty"`
	Name string `json:"name,omitempty"`
}

var (
	innPattern  = regexp.MustCompile(`^(\d{10}|\d{12})$`)
	ogrnPattern = regexp.MustCompile(`^(\d{13}|\d{15})$`)
)

// check trims the binding and lists what is wrong with it.
func (o *Organization) check() []string {
	o.ID, o.INN, o.OGRN, o.Name = strings.TrimSpace(o.ID), strings.TrimSpace(o.INN), strings.TrimSpace(o.OGRN), strings.TrimSpace(o.Name)
	var errs []string
	if o.INN == "" && o.OGRN == "" {
		// Without one, entity resolution could merge the listings only by name: too weak to let an
		// NGO's listings join an organization the city funds.
		errs = append(errs, "an organization binding needs an INN or an OGRN")
	}
	if o.INN != "" && !innPattern.MatchString(o.INN) {
		errs = append(errs, fmt.Sprintf("INN %q is not 10 or 12 digits", o.INN))
	}
	if o.OGRN != "" && !ogrnPattern.MatchString(o.OGRN) {
		errs = append(errs, fmt.Sprintf("OGRN %q is not 13 or 15 digits", o.OGRN))
	}
	return errs
}

// NewClient is what Create needs. Zero Rate and Burst take the defaults.
type NewClient struct {
	Name     string
	Kind     Kind
	Scopes   []string
	Purposes []string
	Rate     float64
	Burst    int
	// Organization binds an NGO client at once (optional; Bind does it later).
	Organization *Organization
}

func (n *NewClient) check() error {
	var errs []string
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" {
		errs = append(errs, "a name is required")
	}
	if !slices.Contains(Kinds, n.Kind) {
		errs = append(errs, fmt.Sprintf("kind %q is not one of %v", n.Kind, Kinds))
	}
	for _, s := range n.Scopes {
		kinds, ok := scopeKinds[s]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("unknown scope %q (known: %s)", s, strings.Join(Scopes(), ", ")))
		case !slices.Contains(kinds, n.Kind):
			errs = append(errs, fmt.Sprintf("a client of kind %s may not hold scope %s", n.Kind, s))
		}
	}
	for _, p := range n.Purposes {
		if !purposeCode.MatchString(p) {
			errs = append(errs, fmt.Sprintf("purpose %q is not a code (lower-case letters, digits, '_', '.', '-', 2 to 64)", p))
		}
	}
	if n.Organization != nil {
		if n.Kind != KindNGO {
			errs = append(errs, "only an ngo client is bound to an organization")
		}
		errs = append(errs, n.Organization.check()...)
	}
	if n.Rate < 0 || n.Burst < 0 {
		errs = append(errs, "rate and burst must not be negative")
	}
	if n.Rate == 0 {
		n.Rate = DefaultRate
	}
	if n.Burst == 0 {
		n.Burst = DefaultBurst
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidClient, strings.Join(errs, "; "))
	}
	n.Scopes = sortedUnique(n.Scopes)
	n.Purposes = sortedUnique(n.Purposes)
	return nil
}

func sortedUnique(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return slices.Compact(out)
}

// tokenPrefix marks the hub's tokens, so a leaked one is recognizable by secret scanners.
const tokenPrefix = "shub_"

// HashToken returns the SHA-256 of a token, as stored.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Store reads and writes clients.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns the store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Create creates a client and returns it with its token, which is not kept and cannot be shown
// again.
func (s *Store) Create(ctx context.Context, n NewClient) (Client, string, error) {
	if err := n.check(); err != nil {
		return Client{}, "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Client{}, "", fmt.Errorf("error making a token: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	c := Client{ID: uuid.NewString(), Name: n.Name, Kind: n.Kind, Scopes: n.Scopes, Purposes: n.Purposes,
		Rate: n.Rate, Burst: n.Burst, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Organization: n.Organization}
	var org Organization
	if n.Organization != nil {
		org = *n.Organization
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_clients (id, name, kind, token_sha256, scopes, purposes, rate, burst, created_at,
			organization_id, organization_inn, organization_ogrn, organization_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.ID, c.Name, string(c.Kind), HashToken(token), c.Scopes, c.Purposes, c.Rate, c.Burst, c.CreatedAt,
		org.ID, org.INN, org.OGRN, org.Name)
	if err != nil {
		return Client{}, "", fmt.Errorf("error creating client %q: %w", n.Name, err)
	}
	return c, token, nil
}

const clientColumns = `id, name, kind, scopes, purposes, rate, burst, created_at, revoked_at,
	organization_id, organization_inn, organization_ogrn, organization_name`

func scanClient(row pgx.Row) (Client, error) {
	var c Client
	var kind string
	var org Organization
	err := row.Scan(&c.ID, &c.Name, &kind, &c.Scopes, &c.Purposes, &c.Rate, &c.Burst, &c.CreatedAt, &c.RevokedAt,
		&org.ID, &org.INN, &org.OGRN, &org.Name)
	c.Kind = Kind(kind)
	if org != (Organization{}) {
		c.Organization = &org
	}
	return c, err
}

// Get returns one client, revoked or not.
func (s *Store) Get(ctx context.Context, id string) (Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM api_clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Client{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Client{}, fmt.Errorf("error reading client %s: %w", id, err)
	}
	return c, nil
}

// Bind binds an NGO client to the organization it speaks for, replacing an earlier binding: from
// then on its listings carry that organization's identifiers. Binding another kind of client is
// ErrInvalidClient.
func (s *Store) Bind(ctx context.Context, id string, org Organization) (Client, error) {
	if errs := org.check(); len(errs) > 0 {
		return Client{}, fmt.Errorf("%w: %s", ErrInvalidClient, strings.Join(errs, "; "))
	}
	c, err := scanClient(s.pool.QueryRow(ctx, `UPDATE api_clients
		SET organization_id = $2, organization_inn = $3, organization_ogrn = $4, organization_name = $5
		WHERE id = $1 AND kind = 'ngo' RETURNING `+clientColumns, id, org.ID, org.INN, org.OGRN, org.Name))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.Get(ctx, id); gerr != nil {
			return Client{}, gerr
		}
		return Client{}, fmt.Errorf("%w: client %s is not an ngo client; only those are bound to an organization", ErrInvalidClient, id)
	}
	if err != nil {
		return Client{}, fmt.Errorf("error binding client %s: %w", id, err)
	}
	return c, nil
}

// List returns every client, revoked ones included, oldest first.
func (s *Store) List(ctx context.Context) ([]Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM api_clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("error listing clients: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Client, error) { return scanClient(r) })
	if err != nil {
		return nil, fmt.Errorf("error listing clients: %w", err)
	}
	return out, nil
}

// Revoke revokes a client's token at once; revoking it again changes nothing.
func (s *Store) Revoke(ctx context.Context, id string) (Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `UPDATE api_clients SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 RETURNING `+clientColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Client{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Client{}, fmt.Errorf("error revoking client %s: %w", id, err)
	}
	return c, nil
}

// Authenticate returns the client holding token, or ErrUnauthorized.
func (s *Store) Authenticate(ctx context.Context, token string) (Client, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return Client{}, ErrUnauthorized
	}
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM api_clients
		WHERE token_sha256 = $1 AND revoked_at IS NULL`, HashToken(token)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Client{}, ErrUnauthorized
	}
	if err != nil {
		return Client{}, fmt.Errorf("error authenticating a client: %w", err)
	}
	return c, nil
}
