package cases

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"socialhub/schemas"
)

// RulesFile is the embedded file of routing rules, channel exclusions and deadlines, in schemas/.
const RulesFile = "case_rules.json"

// AnyCategory in a route, exclusion or deadline matches every service.
const AnyCategory = "*"

// Organization is a department that takes up applications: a code the routes name, its Russian
// name, optionally its id in the catalog, and the API clients (ids of internal/clients) that speak
// for it. Clients are deployment data: the embedded file binds none, a config override does.
type Organization struct {
	ID        string   `json:"id" yaml:"id"`
	Name      string   `json:"name" yaml:"name"`
	CatalogID string   `json:"catalog_id,omitempty" yaml:"catalog_id"`
	Clients   []string `json:"clients,omitempty" yaml:"clients"`
}

// Route sends applications for services of the categories (taxonomy term ids, or "*"), from
// residents registered in the districts or okrugs (neither: the whole city), to an organization.
type Route struct {
	Categories   []string `json:"categories" yaml:"categories"`
	Districts    []string `json:"districts,omitempty" yaml:"districts"`
	Okrugs       []string `json:"okrugs,omitempty" yaml:"okrugs"`
	Organization string   `json:"organization" yaml:"organization"`
}

// Exclusion refuses applications through the channels for services of the categories or ids,
// with the reason the operator reads out.
type Exclusion struct {
	Channels   []string `json:"channels" yaml:"channels"`
	Categories []string `json:"categories,omitempty" yaml:"categories"`
	ServiceIDs []string `json:"service_ids,omitempty" yaml:"service_ids"`
	Reason     string   `json:"reason" yaml:"reason"`
}

// Deadline is how long a case may stay at a status, for services of the categories (none: all).
type Deadline struct {
	Categories []string `json:"categories,omitempty" yaml:"categories"`
	Status     string   `json:"status" yaml:"status"`
	Days       int      `json:"days" yaml:"days"`
}

// RulesDoc is a rules document. An override's organizations replace the embedded ones of the
// same id; its routes, exclusions and deadlines are added and take precedence (a later route or
// deadline for the same key replaces the earlier one).
type RulesDoc struct {
	Organizations     []Organization `json:"organizations" yaml:"organizations"`
	Routes            []Route        `json:"routes" yaml:"routes"`
	ChannelExclusions []Exclusion    `json:"channel_exclusions" yaml:"channel_exclusions"`
	Deadlines         []Deadline     `json:"deadlines" yaml:"deadlines"`
}

// RulesSource is a rules document (JSON or YAML) with the name errors cite.
type RulesSource struct {
	Name string
	Data []byte
}

// Rules are loaded, validated rules. They are safe for concurrent use.
type Rules struct {
	orgs       map[string]*Organization
	byClient   map[string]string // client id → organization id
	routes     map[routeKey]string
	exclusions []Exclusion
	deadlines  map[deadlineKey]time.Duration
}

// Area kinds of a route key, from the most specific.
const (
	areaDistrict = "district"
	areaOkrug    = "okrug"
	areaCity     = "city"
)

type routeKey struct{ category, areaKind, area string }

type deadlineKey struct{ category, status string }

var orgCode = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// DefaultRules returns the embedded rules, with the overrides applied in order.
func DefaultRules(overrides ...RulesSource) (*Rules, error) {
	b, err := fs.ReadFile(schemas.FS(), RulesFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	return LoadRules(append([]RulesSource{{Name: "schemas/" + RulesFile, Data: b}}, overrides...)...)
}

// LoadRules reads the sources in order and validates the result: organization codes, known
// districts, okrugs, taxonomy terms, channels and statuses, routes naming known organizations,
// no two routes of one source claiming the same category and area for different organizations,
// positive deadlines, and no client speaking for two organizations. Every problem is reported.
func LoadRules(sources ...RulesSource) (*Rules, error) {
	rs := &Rules{orgs: map[string]*Organization{}, byClient: map[string]string{}, routes: map[routeKey]string{},
		deadlines: map[deadlineKey]time.Duration{}}
	var errs []error
	type pendingRoute struct {
		src string
		i   int
		r   Route
	}
	var routes []pendingRoute
	for _, src := range sources {
		var doc RulesDoc
		var err error
		if t := bytes.TrimSpace(src.Data); len(t) > 0 && t[0] == '{' {
			dec := json.NewDecoder(bytes.NewReader(t))
			dec.DisallowUnknownFields()
			err = dec.Decode(&doc)
		} else {
			dec := yaml.NewDecoder(bytes.NewReader(src.Data))
			dec.KnownFields(true)
			err = dec.Decode(&doc)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a rules document: %w", src.Name, err))
			continue
		}
		for i, o := range doc.Organizations {
			if !orgCode.MatchString(o.ID) {
				errs = append(errs, fmt.Errorf("%s: organizations[%d]: id %q must be lower-case letters, digits, '.', '_' or '-'", src.Name, i, o.ID))
				continue
			}
			if strings.TrimSpace(o.Name) == "" {
				errs = append(errs, fmt.Errorf("%s: organization %s: a name is required", src.Name, o.ID))
				continue
			}
			rs.orgs[o.ID] = &o
		}
		for i, r := range doc.Routes {
			routes = append(routes, pendingRoute{src.Name, i, r})
		}
		for i, e := range doc.ChannelExclusions {
			if p := checkExclusion(e); len(p) > 0 {
				errs = append(errs, fmt.Errorf("%s: channel_exclusions[%d]: %s", src.Name, i, strings.Join(p, "; ")))
				continue
			}
			rs.exclusions = append(rs.exclusions, e)
		}
		for i, d := range doc.Deadlines {
			var p []string
			if !slices.Contains(Statuses, d.Status) {
				p = append(p, fmt.Sprintf("status %q is not one of %s", d.Status, strings.Join(Statuses, ", ")))
			} else if terminal(d.Status) {
				p = append(p, fmt.Sprintf("status %s ends a case: it has no deadline", d.Status))
			}
			if d.Days <= 0 {
				p = append(p, "days must be positive")
			}
			p = append(p, checkCategories(d.Categories, true)...)
			if len(p) > 0 {
				errs = append(errs, fmt.Errorf("%s: deadlines[%d]: %s", src.Name, i, strings.Join(p, "; ")))
				continue
			}
			cats := d.Categories
			if len(cats) == 0 {
				cats = []string{AnyCategory}
			}
			for _, c := range cats {
				rs.deadlines[deadlineKey{c, d.Status}] = time.Duration(d.Days) * 24 * time.Hour
			}
		}
	}
	// Routes last: they may name organizations of a later source. Within one source two routes
	// claiming one key for different organizations are a mistake; a later source overrides.
	claimed := map[routeKey]pendingRoute{}
	for _, pr := range routes {
		keys, p := routeKeys(pr.r)
		if _, ok := rs.orgs[pr.r.Organization]; !ok {
			p = append(p, fmt.Sprintf("organization %q is not among the organizations", pr.r.Organization))
		}
		if len(p) > 0 {
			errs = append(errs, fmt.Errorf("%s: routes[%d]: %s", pr.src, pr.i, strings.Join(p, "; ")))
			continue
		}
		for _, k := range keys {
			if prev, ok := claimed[k]; ok && prev.src == pr.src && prev.r.Organization != pr.r.Organization {
				errs = append(errs, fmt.Errorf("%s: routes[%d] and routes[%d] both route category %s in %s %s, to %s and %s",
					pr.src, prev.i, pr.i, k.category, k.areaKind, k.area, prev.r.Organization, pr.r.Organization))
				continue
			}
			claimed[k] = pr
			rs.routes[k] = pr.r.Organization
		}
	}
	for _, o := range rs.orgs {
		for _, c := range o.Clients {
			if prev, ok := rs.byClient[c]; ok && prev != o.ID {
				errs = append(errs, fmt.Errorf("client %s speaks for both %s and %s", c, prev, o.ID))
				continue
			}
			rs.byClient[c] = o.ID
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidRules, errors.Join(errs...))
	}
	return rs, nil
}

func checkCategories(cats []string, allowAny bool) []string {
	var p []string
	for _, c := range cats {
		if c == AnyCategory && allowAny {
			continue
		}
		if _, ok := schemas.TaxonomyTermByID(c); !ok {
			p = append(p, fmt.Sprintf("category %q is not a term of schemas/taxonomy.json", c))
		}
	}
	return p
}

func checkExclusion(e Exclusion) []string {
	var p []string
	if len(e.Channels) == 0 {
		p = append(p, "channels are required")
	}
	for _, c := range e.Channels {
		if !slices.Contains(Channels, c) {
			p = append(p, fmt.Sprintf("channel %q is not one of %s", c, strings.Join(Channels, ", ")))
		}
	}
	if len(e.Categories) == 0 && len(e.ServiceIDs) == 0 {
		p = append(p, "categories or service_ids are required")
	}
	p = append(p, checkCategories(e.Categories, true)...)
	if strings.TrimSpace(e.Reason) == "" {
		p = append(p, "a reason is required: the operator reads it out")
	}
	return p
}

func routeKeys(r Route) ([]routeKey, []string) {
	var p []string
	if len(r.Categories) == 0 {
		p = append(p, `categories are required ("*" for every service)`)
	}
	p = append(p, checkCategories(r.Categories, true)...)
	if len(r.Districts) > 0 && len(r.Okrugs) > 0 {
		p = append(p, "a route names districts or okrugs, not both")
	}
	var areas []routeKey
	for _, d := range r.Districts {
		name, ok := districtName(d)
		if !ok {
			p = append(p, fmt.Sprintf("district %q is not in schemas/districts.json", d))
		}
		areas = append(areas, routeKey{areaKind: areaDistrict, area: name})
	}
	for _, o := range r.Okrugs {
		if !slices.ContainsFunc(schemas.Okrugs(), func(k schemas.Okrug) bool { return k.Short == o }) {
			p = append(p, fmt.Sprintf("okrug %q is not in schemas/districts.json (use the short name, e.g. ЮВАО)", o))
		}
		areas = append(areas, routeKey{areaKind: areaOkrug, area: o})
	}
	if len(areas) == 0 {
		areas = []routeKey{{areaKind: areaCity}}
	}
	var keys []routeKey
	for _, c := range r.Categories {
		for _, a := range areas {
			a.category = c
			keys = append(keys, a)
		}
	}
	return keys, p
}

// districtName returns the reference name of a district or one of its variants.
func districtName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, d := range schemas.Districts() {
		if strings.EqualFold(d.Name, s) || slices.ContainsFunc(d.Variants, func(v string) bool { return strings.EqualFold(v, s) }) {
			return d.Name, true
		}
	}
	return "", false
}

// Organization returns the organization with the code.
func (rs *Rules) Organization(id string) (Organization, bool) {
	o, ok := rs.orgs[id]
	if !ok {
		return Organization{}, false
	}
	return *o, true
}

// OrganizationOfClient returns the organization an API client speaks for.
func (rs *Rules) OrganizationOfClient(clientID string) (string, bool) {
	o, ok := rs.byClient[clientID]
	return o, ok
}

// Routing is where an application goes, and why.
type Routing struct {
	Organization string `json:"organization"`
	Category     string `json:"category"`  // the service's category the route matched ("*": any)
	Area         string `json:"area"`      // district, okrug or city
	AreaName     string `json:"area_name"` // the district's or okrug's name; "" for the city
}

// Route returns the organization for a service of the categories and a resident registered in
// the district of the okrug. A route for the service's category wins over one for every service;
// among those, a district's wins over an okrug's, and an okrug's over the city's.
func (rs *Rules) Route(categories []string, district, okrug string) (Routing, bool) {
	cats := slices.Sorted(slices.Values(categories))
	for _, group := range [][]string{cats, {AnyCategory}} {
		for _, area := range []routeKey{{areaKind: areaDistrict, area: district}, {areaKind: areaOkrug, area: okrug}, {areaKind: areaCity}} {
			if area.areaKind != areaCity && area.area == "" {
				continue
			}
			for _, c := range group {
				area.category = c
				if org, ok := rs.routes[area]; ok {
					return Routing{Organization: org, Category: c, Area: area.areaKind, AreaName: area.area}, true
				}
			}
		}
	}
	return Routing{}, false
}

// Excluded returns the reason applications for the service through the channel are refused.
func (rs *Rules) Excluded(channel, serviceID string, categories []string) (string, bool) {
	for i := len(rs.exclusions) - 1; i >= 0; i-- { // a later (override) exclusion speaks first
		e := rs.exclusions[i]
		if !slices.Contains(e.Channels, channel) {
			continue
		}
		if slices.Contains(e.ServiceIDs, serviceID) || slices.Contains(e.Categories, AnyCategory) ||
			slices.ContainsFunc(categories, func(c string) bool { return slices.Contains(e.Categories, c) }) {
			return e.Reason, true
		}
	}
	return "", false
}

// Deadline returns how long a case of a service of the categories may stay at status: the
// category's deadline, else the one for every service; false when the status has none.
func (rs *Rules) Deadline(categories []string, status string) (time.Duration, bool) {
	best := time.Duration(0)
	for _, c := range categories {
		// Of several categories with deadlines, the most generous: the stricter one belongs to
		// another kind of service.
		if d, ok := rs.deadlines[deadlineKey{c, status}]; ok && d > best {
			best = d
		}
	}
	if best > 0 {
		return best, true
	}
	d, ok := rs.deadlines[deadlineKey{AnyCategory, status}]
	return d, ok
}
