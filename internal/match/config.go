package match

import (
	"fmt"
	"strings"
)

// Thresholds split scores three ways: at or above Merge a pair merges on its own; at or above
// Review (and below Merge) it goes to a person; below Review the records stay apart.
type Thresholds struct {
	Merge  float64 `yaml:"merge"`
	Review float64 `yaml:"review"`
}

// OrganizationWeights weigh the features of two organizations without a shared identifier.
type OrganizationWeights struct {
	Name   float64 `yaml:"name"`   // × token similarity of the names (0..1)
	Phone  float64 `yaml:"phone"`  // a phone number in common
	Email  float64 `yaml:"email"`  // an e-mail address in common
	Domain float64 `yaml:"domain"` // a web site host in common
}

// LocationWeights weigh the features of two service points.
type LocationWeights struct {
	Distance      float64 `yaml:"distance"`       // × closeness: 1 within NearMeters, 0 from FarMeters
	Address       float64 `yaml:"address"`        // × token similarity of the addresses
	Name          float64 `yaml:"name"`           // × token similarity of the names
	Organization  float64 `yaml:"organization"`   // the same canonical organization runs both
	Phone         float64 `yaml:"phone"`          // a phone number in common
	OtherDistrict float64 `yaml:"other_district"` // subtracted when both name a district and they differ
	NearMeters    float64 `yaml:"near_meters"`
	FarMeters     float64 `yaml:"far_meters"`
}

// ServiceWeights weigh two services of the same canonical organization (services of different
// organizations are never candidates).
type ServiceWeights struct {
	Name     float64 `yaml:"name"`     // × token similarity of the names
	Location float64 `yaml:"location"` // delivered at a canonical location in common
	Term     float64 `yaml:"term"`     // a taxonomy term in common
	Phone    float64 `yaml:"phone"`    // a phone number in common
}

// Config holds the weights, thresholds and source trust of entity resolution. The defaults were
// tuned on the demo generator's ground truth (make eval).
type Config struct {
	Organization           OrganizationWeights `yaml:"organization"`
	Location               LocationWeights     `yaml:"location"`
	Service                ServiceWeights      `yaml:"service"`
	OrganizationThresholds Thresholds          `yaml:"organization_thresholds"`
	LocationThresholds     Thresholds          `yaml:"location_thresholds"`
	ServiceThresholds      Thresholds          `yaml:"service_thresholds"`

	// Trust ranks sources for survivorship: a canonical field takes its value from the most
	// trusted source that has one, then from the one whose data changed last. Keys are source names; a
	// source not listed ranks DefaultTrust. Lower ranks are more trusted. TrustByKind builds it
	// from the sources' kinds.
	Trust map[string]int `yaml:"trust"`
	// TrustPrefixes ranks sources named at run time (NGOs' pushed listings "ngo-<client>", their
	// registered feeds "feed-<id>") by the start of their name, for sources Trust does not list.
	TrustPrefixes map[string]int `yaml:"trust_prefixes"`
	DefaultTrust  int            `yaml:"default_trust"`

	// MaxCandidates bounds the candidates read per blocking key probed in a batch, and scored per
	// record and key, so that a key many records share (a switchboard number, a busy grid cell)
	// cannot make a record's cost grow with the catalog.
	MaxCandidates int `yaml:"max_candidates"`
}

// KindTrust is the default trust order of source kinds: the departments' own systems (csv lists
// and HSDS feeds), then registries, then what NGOs publish themselves, then grant lists.
var KindTrust = []string{"csv", "hsds", "residents", "httpjson", "ngogrants"}

// TrustByKind ranks sources by their kind's place in order (KindTrust when nil); kinds not in
// order rank after every listed one. kinds maps source names to kinds.
func TrustByKind(kinds map[string]string, order []string) map[string]int {
	if order == nil {
		order = KindTrust
	}
	out := make(map[string]int, len(kinds))
	for name, kind := range kinds {
		rank := len(order)
		for i, k := range order {
			if strings.EqualFold(k, kind) {
				rank = i
				break
			}
		}
		out[name] = rank
	}
	return out
}

// DefaultConfig returns the tuned defaults.
func DefaultConfig() Config {
	return Config{
		Organization: OrganizationWeights{Name: 0.55, Phone: 0.3, Email: 0.3, Domain: 0.2},
		Location: LocationWeights{
			Distance: 0.4, Address: 0.3, Name: 0.15, Organization: 0.2, Phone: 0.1, OtherDistrict: 0.4,
			NearMeters: 60, FarMeters: 400,
		},
		Service:                ServiceWeights{Name: 0.6, Location: 0.25, Term: 0.15, Phone: 0.1},
		OrganizationThresholds: Thresholds{Merge: 0.8, Review: 0.55},
		LocationThresholds:     Thresholds{Merge: 0.75, Review: 0.5},
		ServiceThresholds:      Thresholds{Merge: 0.8, Review: 0.6},
		DefaultTrust:           len(KindTrust),
		MaxCandidates:          50,
	}
}

// Validate checks the thresholds and weights.
func (c Config) Validate() error {
	for name, t := range map[string]Thresholds{
		"organization": c.OrganizationThresholds, "location": c.LocationThresholds, "service": c.ServiceThresholds,
	} {
		if t.Review <= 0 || t.Merge > 1 || t.Review > t.Merge {
			return fmt.Errorf("%w: %s thresholds must hold 0 < review (%g) <= merge (%g) <= 1", ErrBadConfig, name, t.Review, t.Merge)
		}
	}
	ws := []float64{c.Organization.Name, c.Organization.Phone, c.Organization.Email, c.Organization.Domain,
		c.Location.Distance, c.Location.Address, c.Location.Name, c.Location.Organization, c.Location.Phone,
		c.Location.OtherDistrict, c.Service.Name, c.Service.Location, c.Service.Term, c.Service.Phone}
	for _, w := range ws {
		if w < 0 {
			return fmt.Errorf("%w: weights cannot be negative", ErrBadConfig)
		}
	}
	if c.Location.FarMeters <= c.Location.NearMeters || c.Location.NearMeters < 0 {
		return fmt.Errorf("%w: location near_meters (%g) must be below far_meters (%g)", ErrBadConfig, c.Location.NearMeters, c.Location.FarMeters)
	}
	if c.MaxCandidates <= 0 {
		return fmt.Errorf("%w: max_candidates must be positive", ErrBadConfig)
	}
	return nil
}

// TrustOf returns the rank of a source (lower is more trusted).
func (c Config) TrustOf(source string) int {
	if r, ok := c.Trust[source]; ok {
		return r
	}
	for p, r := range c.TrustPrefixes {
		if strings.HasPrefix(source, p) {
			return r
		}
	}
	return c.DefaultTrust
}

// ThresholdsOf returns the thresholds of an entity type.
func (c Config) ThresholdsOf(entityType string) Thresholds {
	switch entityType {
	case TypeOrganization:
		return c.OrganizationThresholds
	case TypeLocation:
		return c.LocationThresholds
	default:
		return c.ServiceThresholds
	}
}
