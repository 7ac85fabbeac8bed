package demo

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"socialhub/connectors/servicedoc"
	"socialhub/schemas"
)

// The HSDS feed is a second department's system — the Департамент труда и социальной защиты
// населения — publishing its services as an HSDS 3.0 API: the employment centres «Моя работа», the
// city's psychological help service, two territorial social-service centres, and two institutions
// the department CSV does not list. Those it shares with the department CSV are written the way a
// different system writes them: full legal names against abbreviations, «+74951234567» against
// «8 (495) 123-45-67», «улица …, дом 14, корпус 2» against «ул. …, д. 14, корп. 2», coordinates
// rounded, and one employment centre moved to a new address since the CSV was exported.

// Defaults of HSDSFeedOptions.
const (
	DefaultHSDSBroken  = 2
	DefaultHSDSPerPage = 10
	MaxHSDSPerPage     = 100
)

// hsdsModifiedBase is when the feed's first service was last modified; the others follow it.
var hsdsModifiedBase = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// hsdsNamespace seeds the feed's UUIDs, which HSDS asks ids to be.
var hsdsNamespace = uuid.MustParse("6f1c2f0e-7d1b-4c55-9a57-3d2b1e0c9a11")

// HSDSFeedOptions shape the feed.
type HSDSFeedOptions struct {
	// Seed is the world's seed, the department CSV's Options.Seed (0: DefaultSeed): the same seed
	// gives the same shared institutions.
	Seed int64
	// Broken is how many services the profile rejects (0: DefaultHSDSBroken, negative: none).
	Broken int
}

func (o HSDSFeedOptions) withDefaults() HSDSFeedOptions {
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	switch {
	case o.Broken == 0:
		o.Broken = DefaultHSDSBroken
	case o.Broken < 0:
		o.Broken = 0
	}
	return o
}

// HSDS 3.0 objects as the feed writes them.
type (
	hsdsService struct {
		ID                     string            `json:"id"`
		OrganizationID         string            `json:"organization_id"`
		Name                   string            `json:"name"`
		Description            string            `json:"description"`
		URL                    string            `json:"url,omitempty"`
		Email                  string            `json:"email,omitempty"`
		Status                 string            `json:"status"`
		EligibilityDescription string            `json:"eligibility_description,omitempty"`
		LastModified           string            `json:"last_modified"`
		Organization           *hsdsOrganization `json:"organization,omitempty"`
		Phones                 []hsdsPhone       `json:"phones,omitempty"`
		Schedules              []hsdsSchedule    `json:"schedules,omitempty"`
		ServiceAtLocations     []hsdsSAL         `json:"service_at_locations,omitempty"`
		Attributes             []hsdsAttribute   `json:"attributes,omitempty"`
	}
	hsdsOrganization struct {
		ID                      string           `json:"id"`
		Name                    string           `json:"name"`
		Description             string           `json:"description"`
		Email                   string           `json:"email,omitempty"`
		Website                 string           `json:"website,omitempty"`
		LegalStatus             string           `json:"legal_status,omitempty"`
		OrganizationIdentifiers []hsdsIdentifier `json:"organization_identifiers,omitempty"`
	}
	hsdsIdentifier struct {
		ID               string `json:"id"`
		IdentifierScheme string `json:"identifier_scheme"`
		IdentifierType   string `json:"identifier_type"`
		Identifier       string `json:"identifier"`
	}
	hsdsPhone struct {
		ID     string `json:"id"`
		Number string `json:"number"`
		Type   string `json:"type,omitempty"`
	}
	hsdsSchedule struct {
		ID          string `json:"id"`
		Freq        string `json:"freq,omitempty"`
		Byday       string `json:"byday,omitempty"`
		OpensAt     string `json:"opens_at,omitempty"`
		ClosesAt    string `json:"closes_at,omitempty"`
		Description string `json:"description,omitempty"`
	}
	hsdsSAL struct {
		ID         string       `json:"id"`
		ServiceID  string       `json:"service_id"`
		LocationID string       `json:"location_id"`
		Phones     []hsdsPhone  `json:"phones,omitempty"`
		Location   hsdsLocation `json:"location"`
	}
	hsdsLocation struct {
		ID           string        `json:"id"`
		LocationType string        `json:"location_type"`
		Name         string        `json:"name"`
		Latitude     float64       `json:"latitude"`
		Longitude    float64       `json:"longitude"`
		Addresses    []hsdsAddress `json:"addresses"`
	}
	hsdsAddress struct {
		ID            string `json:"id"`
		LocationID    string `json:"location_id"`
		Address1      string `json:"address_1"`
		City          string `json:"city"`
		StateProvince string `json:"state_province"`
		PostalCode    string `json:"postal_code"`
		Country       string `json:"country"`
		AddressType   string `json:"address_type"`
	}
	hsdsAttribute struct {
		ID             string           `json:"id"`
		TaxonomyTermID string           `json:"taxonomy_term_id"`
		LinkType       string           `json:"link_type"`
		TaxonomyTerm   hsdsTaxonomyTerm `json:"taxonomy_term"`
	}
	hsdsTaxonomyTerm struct {
		ID       string `json:"id"`
		Code     string `json:"code"`
		Name     string `json:"name"`
		Taxonomy string `json:"taxonomy"`
	}
)

// brief is the service as /services lists it without full=true: its one-to-one fields only.
func (s hsdsService) brief() hsdsService {
	s.Organization, s.Phones, s.Schedules, s.ServiceAtLocations, s.Attributes = nil, nil, nil, nil, nil
	return s
}

// feedPoint is a service point of the feed with what makes it the same place as a CSV point.
type feedPoint struct {
	loc     hsdsLocation
	phone   string
	truthID string
	deptLoc string // the department CSV's location id, "" for a point the CSV does not have
}

// feedOrg is an institution of the feed.
type feedOrg struct {
	org        hsdsOrganization
	inn        string
	deptID     string // the department CSV's organization id, "" when the CSV does not list it
	categories []string
	points     []feedPoint
}

// hsdsWorld is the feed's content: services in listing order, the full and the brief JSON of each.
type hsdsWorld struct {
	services []hsdsService
	full     []json.RawMessage
	brief    []json.RawMessage
	byID     map[string]int
	orgs     []*feedOrg
	manifest Manifest
}

func feedID(parts ...string) string {
	return uuid.NewSHA1(hsdsNamespace, []byte(strings.Join(parts, "\x00"))).String()
}

// buildHSDSWorld builds the feed from the department's world of the same seed.
func buildHSDSWorld(o HSDSFeedOptions) *hsdsWorld {
	o = o.withDefaults()
	g := gen{rand.NewPCG(uint64(o.Seed), 0x45d5f33d)}
	dept := departmentOrgs(Options{Seed: o.Seed})
	w := &hsdsWorld{byID: map[string]int{}}

	var tcso []*org
	for _, og := range dept {
		if strings.HasPrefix(og.name, "ГБУ ТЦСО") {
			tcso = append(tcso, og)
		}
	}
	for _, og := range dept {
		var name string
		ids := true
		cats := og.categories
		switch {
		case og.site == "https://czn.mos.ru":
			name = "ГКУ г. Москвы Центр занятости населения «Моя работа»"
		case og.site == "https://msppn.mos.ru":
			name, ids = "ГБУ МСППН", false // no identifiers: matched by name and address only
		case len(tcso) > 0 && og == tcso[0]:
			d := strings.TrimSuffix(strings.TrimPrefix(og.name, `ГБУ ТЦСО "`), `"`)
			name = "Государственное бюджетное учреждение города Москвы «Территориальный центр социального обслуживания «" + d + "»»"
			cats = []string{"social-service-centre", "pensioners-activities"}
		case len(tcso) > 1 && og == tcso[1]:
			name = strings.ReplaceAll(strings.Replace(og.name, `"`, "«", 1), `"`, "»")
			cats = []string{"social-service-centre", "pensioners-activities"}
		default:
			continue
		}
		fo := &feedOrg{inn: og.inn, deptID: og.id, categories: cats}
		fo.org = hsdsOrganization{
			ID: feedID("org", og.inn), Name: name, Email: og.email, Website: og.site, LegalStatus: "государственное учреждение",
			Description: "Подведомственное учреждение Департамента труда и социальной защиты населения города Москвы.",
		}
		if ids {
			fo.org.OrganizationIdentifiers = []hsdsIdentifier{
				{ID: feedID("inn", og.inn), IdentifierScheme: "RU-INN", IdentifierType: "ИНН", Identifier: og.inn},
				{ID: feedID("ogrn", og.ogrn), IdentifierScheme: "RU-OGRN", IdentifierType: "ОГРН", Identifier: og.ogrn},
			}
		}
		for i, p := range og.points {
			address, lat, lon := p.address, p.lat, p.lon
			if og.site == "https://czn.mos.ru" && i == 1 {
				// This centre moved since the department's export: same place in the world, new address.
				c := geo[p.okrug]
				address = fmt.Sprintf("%s, д. %d", pick(g, c.streets), 121+g.intn(40))
				lat, lon = clamp(lat+0.004, 55.55, 55.92), clamp(lon-0.006, 37.35, 37.85)
			}
			fo.points = append(fo.points, w.point(g, fo, i, p, address, lat, lon, true))
		}
		w.orgs = append(w.orgs, fo)
	}

	// Institutions only the feed lists.
	extra := []struct {
		name, host string
		categories []string
		okrugs     []string
	}{
		{"ГБУ города Москвы «Кризисный центр помощи женщинам и детям»", "kc-women", []string{"psychological-help", "psych-individual"}, []string{"ЦАО", "СВАО"}},
		{"АНО «Центр психологической помощи „Точка опоры“»", "tochka-opory", []string{"psych-individual", "psych-group"}, []string{"ЗАО"}},
	}
	for _, e := range extra {
		inn := innLegal(g)
		fo := &feedOrg{inn: inn, categories: e.categories}
		fo.org = hsdsOrganization{
			ID: feedID("org", inn), Name: e.name, Email: "info@" + e.host + ".ru", Website: "https://" + e.host + ".ru",
			Description: "Помощь людям в трудной жизненной ситуации.",
			OrganizationIdentifiers: []hsdsIdentifier{
				{ID: feedID("inn", inn), IdentifierScheme: "RU-INN", IdentifierType: "ИНН", Identifier: inn},
			},
		}
		for i, okrug := range e.okrugs {
			c := geo[okrug]
			p := point{
				name:    fmt.Sprintf("%s — %s", strings.Trim(strings.SplitN(e.name, "«", 2)[1], "»"), okrug),
				address: fmt.Sprintf("%s, д. %d", pick(g, c.streets), 1+g.intn(120)),
				okrug:   okrug,
				postal:  fmt.Sprintf("1%02d%03d", 9+g.intn(21), g.intn(1000)),
				phone:   phone(g),
				lat:     clamp(c.lat+g.float(-0.02, 0.02), 55.55, 55.92),
				lon:     clamp(c.lon+g.float(-0.03, 0.03), 37.35, 37.85),
			}
			fo.points = append(fo.points, w.point(g, fo, i, p, p.address, p.lat, p.lon, false))
		}
		w.orgs = append(w.orgs, fo)
	}

	// One service per institution and service template, delivered at every point of the institution.
	for _, fo := range w.orgs {
		for _, cat := range fo.categories {
			for _, t := range templates[cat] {
				w.add(w.service(g, fo, cat, t))
			}
		}
	}
	for i := range w.services {
		w.manifest.Valid = append(w.manifest.Valid, w.services[i].ID)
	}
	// Broken services: copies of valid ones with one defect each, spread through the listing.
	for k := range o.Broken {
		src := w.services[g.intn(len(w.services))]
		b := src
		b.ID = feedID("broken", strconv.Itoa(k))
		b.Name = src.Name + " (архив)"
		b.ServiceAtLocations = append([]hsdsSAL(nil), src.ServiceAtLocations[:1]...)
		b.ServiceAtLocations[0].ID = feedID("broken-sal", strconv.Itoa(k))
		b.ServiceAtLocations[0].ServiceID = b.ID
		var br BrokenRow
		switch k % 2 {
		case 0:
			b.Email = "не-почта"
			br = BrokenRow{ID: b.ID, Field: "email", Why: "e-mail is not an address (email = не-почта)"}
		default:
			loc := b.ServiceAtLocations[0].Location
			loc.ID = feedID("broken-loc", strconv.Itoa(k))
			loc.Latitude = 155.5
			b.ServiceAtLocations[0].Location = loc
			b.ServiceAtLocations[0].LocationID = loc.ID
			br = BrokenRow{ID: b.ID, Field: "service_at_locations.0.location.latitude", Why: "latitude out of range (155.5)"}
		}
		at := g.intn(len(w.services) + 1)
		w.services = append(w.services[:at], append([]hsdsService{b}, w.services[at:]...)...)
		w.manifest.Broken = append(w.manifest.Broken, br)
	}
	for i := range w.services {
		s := &w.services[i]
		s.LastModified = hsdsModifiedBase.Add(time.Duration(i) * 37 * time.Minute).Format(time.RFC3339)
		full, _ := json.Marshal(s)
		brief, _ := json.Marshal(s.brief())
		w.full = append(w.full, full)
		w.brief = append(w.brief, brief)
		w.byID[s.ID] = i
	}
	return w
}

func (w *hsdsWorld) add(s hsdsService) { w.services = append(w.services, s) }

// point writes a service point the feed's way.
func (w *hsdsWorld) point(g gen, fo *feedOrg, i int, p point, address string, lat, lon float64, shared bool) feedPoint {
	locID := feedID("loc", fo.inn, strconv.Itoa(i))
	fp := feedPoint{
		loc: hsdsLocation{
			ID: locID, LocationType: "physical", Name: p.name,
			Latitude: math.Round(lat*1e4) / 1e4, Longitude: math.Round(lon*1e4) / 1e4,
			Addresses: []hsdsAddress{{
				ID: feedID("addr", locID), LocationID: locID, Address1: respellAddress(g, address),
				City: "Москва", StateProvince: "Москва", PostalCode: p.postal, Country: "RU", AddressType: "physical",
			}},
		},
		phone:   respellPhone(g, p.phone),
		truthID: fmt.Sprintf("location:%s:%d", fo.inn, i),
	}
	if shared {
		fp.deptLoc = servicedoc.LocationID(fo.deptID, p.address)
	}
	return fp
}

func (w *hsdsWorld) service(g gen, fo *feedOrg, cat string, t serviceTemplate) hsdsService {
	id := feedID("svc", fo.inn, cat, t.name)
	s := hsdsService{
		ID: id, OrganizationID: fo.org.ID, Name: t.name, Description: t.description,
		URL: fo.org.Website + "/uslugi/" + id[:8], Status: "active",
	}
	org := fo.org
	s.Organization = &org
	term := taxonomyTerm(cat)
	s.Attributes = []hsdsAttribute{{ID: feedID("attr", id), TaxonomyTermID: cat, LinkType: "category", TaxonomyTerm: term}}
	opens, closes, days := "09:00", "18:00", "MO,TU,WE,TH,FR"
	if roundTheClock[cat] {
		opens, closes, days = "00:00", "23:59", "MO,TU,WE,TH,FR,SA,SU"
	} else if g.intn(3) == 0 {
		opens, closes, days = "10:00", "20:00", "MO,TU,WE,TH,FR,SA"
	}
	s.Schedules = []hsdsSchedule{{
		ID: feedID("sched", id), Freq: "WEEKLY", Byday: days, OpensAt: opens, ClosesAt: closes,
		Description: fmt.Sprintf("%s %s–%s", dayRange(days), opens, closes),
	}}
	for _, p := range fo.points {
		salID := feedID("sal", id, p.loc.ID)
		s.ServiceAtLocations = append(s.ServiceAtLocations, hsdsSAL{
			ID: salID, ServiceID: id, LocationID: p.loc.ID, Location: p.loc,
			Phones: []hsdsPhone{{ID: feedID("phone", salID), Number: p.phone, Type: "voice"}},
		})
	}
	return s
}

func dayRange(byday string) string {
	switch byday {
	case "MO,TU,WE,TH,FR":
		return "пн-пт"
	case "MO,TU,WE,TH,FR,SA":
		return "пн-сб"
	}
	return "ежедневно"
}

func taxonomyTerm(id string) hsdsTaxonomyTerm {
	t, _ := schemas.TaxonomyTermByID(id)
	return hsdsTaxonomyTerm{ID: id, Code: t.Code, Name: t.Name, Taxonomy: "socialhub"}
}

// respellPhone writes a department phone the other system's way: E.164 without spaces, or
// «8 (495) 123-45-67».
func respellPhone(g gen, p string) string {
	var digits []byte
	for i := 0; i < len(p); i++ {
		if p[i] >= '0' && p[i] <= '9' {
			digits = append(digits, p[i])
		}
	}
	if len(digits) != 11 {
		return p
	}
	d := string(digits[1:])
	if g.intn(2) == 0 {
		return "+7" + d
	}
	return fmt.Sprintf("8 (%s) %s-%s-%s", d[:3], d[3:6], d[6:8], d[8:])
}

// respellAddress writes «ул. Братиславская, д. 14, корп. 2» as «улица Братиславская, дом 14,
// корпус 2» or «г. Москва, ул. Братиславская, 14к2».
func respellAddress(g gen, a string) string {
	parts := strings.Split(a, ", ")
	if len(parts) < 2 || !strings.HasPrefix(parts[1], "д. ") {
		return a
	}
	street, house := parts[0], strings.TrimPrefix(parts[1], "д. ")
	var extra string
	if len(parts) > 2 {
		extra = parts[2]
	}
	if g.intn(2) == 0 {
		long := strings.NewReplacer("ул.", "улица", "просп.", "проспект", "ш.", "шоссе").Replace(street)
		out := long + ", дом " + house
		switch {
		case strings.HasPrefix(extra, "корп. "):
			out += ", корпус " + strings.TrimPrefix(extra, "корп. ")
		case strings.HasPrefix(extra, "стр. "):
			out += ", строение " + strings.TrimPrefix(extra, "стр. ")
		}
		return out
	}
	out := "г. Москва, " + street + ", " + house
	switch {
	case strings.HasPrefix(extra, "корп. "):
		out += "к" + strings.TrimPrefix(extra, "корп. ")
	case strings.HasPrefix(extra, "стр. "):
		out += "с" + strings.TrimPrefix(extra, "стр. ")
	}
	return out
}

// HSDSFeedManifest lists the feed's services in listing order: those the profile accepts and those
// broken on purpose, with what validation reports for them.
func HSDSFeedManifest(opts HSDSFeedOptions) Manifest {
	return buildHSDSWorld(opts).manifest
}

// HSDSFeed serves the feed as an HSDS 3.0 API at the handler's root: GET / (about the API),
// GET /services (page, per_page up to MaxHSDSPerPage, full, modified_after) and
// GET /services/{id}. The same options give the same bytes.
func HSDSFeed(opts HSDSFeedOptions) http.Handler {
	w := buildHSDSWorld(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, map[string]string{
			"version": "3.0", "profile": "https://socialhub.city/schemas/hsds-3.0/",
			"openapi_url": "https://docs.openreferral.org/en/latest/hsds/api_reference.html",
		})
	})
	mux.HandleFunc("GET /services", w.list)
	mux.HandleFunc("GET /services/{id}", func(rw http.ResponseWriter, r *http.Request) {
		i, ok := w.byID[r.PathValue("id")]
		if !ok {
			writeJSON(rw, http.StatusNotFound, map[string]string{"error": "service not found"})
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write(w.full[i])
	})
	return mux
}

func (w *hsdsWorld) list(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pageNo, perPage := 1, DefaultHSDSPerPage
	var err error
	if v := q.Get("page"); v != "" {
		if pageNo, err = strconv.Atoi(v); err != nil || pageNo < 1 {
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "page must be a whole number from 1"})
			return
		}
	}
	if v := q.Get("per_page"); v != "" {
		if perPage, err = strconv.Atoi(v); err != nil || perPage < 1 {
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "per_page must be a whole number from 1"})
			return
		}
		perPage = min(perPage, MaxHSDSPerPage)
	}
	var since time.Time
	if v := q.Get("modified_after"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "modified_after must be an RFC 3339 date-time"})
			return
		}
	}
	full := q.Get("full") == "true"
	var match []int
	for i, s := range w.services {
		if t, _ := time.Parse(time.RFC3339, s.LastModified); !t.Before(since) {
			match = append(match, i)
		}
	}
	totalPages := (len(match) + perPage - 1) / perPage
	from := min((pageNo-1)*perPage, len(match))
	to := min(from+perPage, len(match))
	contents := make([]json.RawMessage, 0, to-from)
	for _, i := range match[from:to] {
		if full {
			contents = append(contents, w.full[i])
		} else {
			contents = append(contents, w.brief[i])
		}
	}
	writeJSON(rw, http.StatusOK, struct {
		TotalItems int               `json:"total_items"`
		TotalPages int               `json:"total_pages"`
		PageNumber int               `json:"page_number"`
		Size       int               `json:"size"`
		FirstPage  bool              `json:"first_page"`
		LastPage   bool              `json:"last_page"`
		Empty      bool              `json:"empty"`
		Contents   []json.RawMessage `json:"contents"`
	}{len(match), totalPages, pageNo, len(contents), pageNo == 1, pageNo >= totalPages, len(match) == 0, contents})
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

// HSDSFeedTruth returns the ground truth of the feed read as source feedSource against the
// department CSV written with dept read as deptSource: one row per organization and per location
// of the feed, and one row per organization and location of the CSV that the feed also describes,
// under the same truth id («organization:<INN>», «location:<INN>:<n>»).
func HSDSFeedTruth(opts HSDSFeedOptions, dept Options, feedSource, deptSource string) ([]TruthRow, error) {
	if opts.withDefaults().Seed != dept.seedOrDefault() {
		return nil, fmt.Errorf("%w: the feed (seed %d) and the department file (seed %d) are of different worlds", ErrBadOptions, opts.Seed, dept.Seed)
	}
	points, err := DepartmentPoints(dept)
	if err != nil {
		return nil, err
	}
	inCSV := map[string]bool{}
	orgInCSV := map[string]bool{}
	for _, p := range points {
		inCSV[p.LocationID] = true
		orgInCSV[p.OrganizationID] = true
	}
	w := buildHSDSWorld(opts)
	var out []TruthRow
	for _, fo := range w.orgs {
		truth := OrganizationTruthID(fo.inn)
		out = append(out, TruthRow{EntityType: "organization", Source: feedSource, ExternalID: fo.org.ID, TruthID: truth})
		if fo.deptID != "" && orgInCSV[fo.deptID] {
			out = append(out, TruthRow{EntityType: "organization", Source: deptSource, ExternalID: fo.deptID, TruthID: truth})
		}
		for _, p := range fo.points {
			out = append(out, TruthRow{EntityType: "location", Source: feedSource, ExternalID: p.loc.ID, TruthID: p.truthID})
			if p.deptLoc != "" && inCSV[p.deptLoc] {
				out = append(out, TruthRow{EntityType: "location", Source: deptSource, ExternalID: p.deptLoc, TruthID: p.truthID})
			}
		}
	}
	return out, nil
}

func (o Options) seedOrDefault() int64 {
	if o.Seed == 0 {
		return DefaultSeed
	}
	return o.Seed
}
