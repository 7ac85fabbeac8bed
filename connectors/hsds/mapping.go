package hsds

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"socialhub/connectors/servicedoc"
	"socialhub/schemas"
)

// The HSDS 3.0 objects as a feed sends them, as far as the hub's record document uses them. Numbers
// stay raw JSON: what the feed wrote goes to the validator, which reports a bad value by name.
type (
	hService struct {
		ID                     string             `json:"id"`
		OrganizationID         string             `json:"organization_id"`
		Name                   string             `json:"name"`
		AlternateName          string             `json:"alternate_name"`
		Description            string             `json:"description"`
		URL                    string             `json:"url"`
		Email                  string             `json:"email"`
		Status                 string             `json:"status"`
		InterpretationServices string             `json:"interpretation_services"`
		ApplicationProcess     string             `json:"application_process"`
		FeesDescription        string             `json:"fees_description"`
		Accreditations         string             `json:"accreditations"`
		EligibilityDescription string             `json:"eligibility_description"`
		MinimumAge             json.RawMessage    `json:"minimum_age"`
		MaximumAge             json.RawMessage    `json:"maximum_age"`
		AssuredDate            string             `json:"assured_date"`
		Alert                  string             `json:"alert"`
		LastModified           string             `json:"last_modified"`
		Organization           *hOrganization     `json:"organization"`
		Phones                 []hPhone           `json:"phones"`
		Schedules              []hSchedule        `json:"schedules"`
		ServiceAtLocations     []hServiceLocation `json:"service_at_locations"`
		Attributes             []hAttribute       `json:"attributes"`
	}
	hOrganization struct {
		ID                      string        `json:"id"`
		Name                    string        `json:"name"`
		AlternateName           string        `json:"alternate_name"`
		Description             string        `json:"description"`
		Email                   string        `json:"email"`
		Website                 string        `json:"website"`
		LegalStatus             string        `json:"legal_status"`
		TaxID                   string        `json:"tax_id"`
		OrganizationIdentifiers []hIdentifier `json:"organization_identifiers"`
		Phones                  []hPhone      `json:"phones"`
	}
	hIdentifier struct {
		ID               string `json:"id"`
		IdentifierScheme string `json:"identifier_scheme"`
		IdentifierType   string `json:"identifier_type"`
		Identifier       string `json:"identifier"`
	}
	hPhone struct {
		ID          string          `json:"id"`
		Number      string          `json:"number"`
		Extension   json.RawMessage `json:"extension"`
		Type        string          `json:"type"`
		Description string          `json:"description"`
	}
	hSchedule struct {
		ID          string `json:"id"`
		Description string `json:"description"`
		ValidFrom   string `json:"valid_from"`
		ValidTo     string `json:"valid_to"`
		Freq        string `json:"freq"`
		Byday       string `json:"byday"`
		OpensAt     string `json:"opens_at"`
		ClosesAt    string `json:"closes_at"`
		Notes       string `json:"notes"`
	}
	hServiceLocation struct {
		ID          string      `json:"id"`
		LocationID  string      `json:"location_id"`
		Description string      `json:"description"`
		Phones      []hPhone    `json:"phones"`
		Schedules   []hSchedule `json:"schedules"`
		Location    *hLocation  `json:"location"`
	}
	hLocation struct {
		ID           string          `json:"id"`
		LocationType string          `json:"location_type"`
		Name         string          `json:"name"`
		URL          string          `json:"url"`
		Description  string          `json:"description"`
		Latitude     json.RawMessage `json:"latitude"`
		Longitude    json.RawMessage `json:"longitude"`
		Addresses    []hAddress      `json:"addresses"`
		Phones       []hPhone        `json:"phones"`
		Schedules    []hSchedule     `json:"schedules"`
	}
	hAddress struct {
		ID            string `json:"id"`
		Address1      string `json:"address_1"`
		Address2      string `json:"address_2"`
		City          string `json:"city"`
		Region        string `json:"region"`
		StateProvince string `json:"state_province"`
		PostalCode    string `json:"postal_code"`
		Country       string `json:"country"`
		AddressType   string `json:"address_type"`
		// The city's additions, when a feed written for the hub carries them.
		District string `json:"district"`
		Okrug    string `json:"okrug"`
	}
	hAttribute struct {
		ID             string `json:"id"`
		TaxonomyTermID string `json:"taxonomy_term_id"`
		LinkType       string `json:"link_type"`
		Value          string `json:"value"`
		TaxonomyTerm   *struct {
			ID   string `json:"id"`
			Code string `json:"code"`
			Name string `json:"name"`
		} `json:"taxonomy_term"`
	}
)

// nested reports whether the service came with what the record document needs nested in it: its
// organization and, for each service point, its location.
func (s *hService) nested() bool {
	if s.Organization == nil || len(s.ServiceAtLocations) == 0 {
		return false
	}
	for _, sal := range s.ServiceAtLocations {
		if sal.Location == nil {
			return false
		}
	}
	return true
}

// mapper turns HSDS services into record documents.
type mapper struct {
	taxonomy map[string]string
}

// document maps a service. Nested objects without an id get one derived from their parent's, so
// they stay the same from one run to the next; missing required values stay missing, for the
// validator to report.
func (m mapper) document(s *hService) servicedoc.Service {
	d := servicedoc.Service{
		ID: s.ID, Name: s.Name, AlternateName: s.AlternateName, Description: s.Description,
		URL: s.URL, Email: s.Email, Status: s.Status,
		InterpretationServices: s.InterpretationServices, ApplicationProcess: s.ApplicationProcess,
		FeesDescription: s.FeesDescription, Accreditations: s.Accreditations,
		EligibilityDescription: s.EligibilityDescription,
		MinimumAge:             number(s.MinimumAge), MaximumAge: number(s.MaximumAge),
		AssuredDate: s.AssuredDate, Alert: s.Alert, LastModified: s.LastModified,
		Phones:    phones(s.Phones, s.ID),
		Schedules: schedules(s.Schedules, s.ID),
	}
	if s.Organization != nil {
		o := s.Organization
		d.Organization = servicedoc.Organization{
			ID: o.ID, Name: o.Name, AlternateName: o.AlternateName, Description: o.Description,
			Email: o.Email, Website: o.Website, LegalStatus: o.LegalStatus, TaxID: o.TaxID,
			Phones: phones(o.Phones, o.ID),
		}
		if d.Organization.ID == "" {
			d.Organization.ID = s.OrganizationID
		}
		for i, id := range o.OrganizationIdentifiers {
			if id.ID == "" {
				id.ID = d.Organization.ID + "/identifier/" + strconv.Itoa(i)
			}
			d.Organization.OrganizationIdentifiers = append(d.Organization.OrganizationIdentifiers, servicedoc.Identifier{
				ID: id.ID, IdentifierScheme: scheme(id.IdentifierScheme), IdentifierType: id.IdentifierType, Identifier: id.Identifier,
			})
		}
	} else {
		d.Organization.ID = s.OrganizationID
	}
	for i, a := range s.Attributes {
		if a.ID == "" {
			a.ID = s.ID + "/attr/" + strconv.Itoa(i)
		}
		d.Attributes = append(d.Attributes, servicedoc.Attribute{
			ID: a.ID, TaxonomyTermID: m.term(a), LinkType: a.LinkType, Value: a.Value,
		})
	}
	d.ServiceAtLocations = make([]servicedoc.ServiceAtLocation, 0, len(s.ServiceAtLocations))
	for i, sal := range s.ServiceAtLocations {
		if sal.ID == "" {
			sal.ID = s.ID + "/sal/" + strconv.Itoa(i)
		}
		out := servicedoc.ServiceAtLocation{
			ID: sal.ID, Description: sal.Description,
			Phones: phones(sal.Phones, sal.ID), Schedules: schedules(sal.Schedules, sal.ID),
		}
		if l := sal.Location; l != nil {
			out.Location = servicedoc.Location{
				ID: l.ID, LocationType: l.LocationType, Name: l.Name, URL: l.URL, Description: l.Description,
				Latitude: coordinate(l.Latitude), Longitude: coordinate(l.Longitude),
				Addresses: make([]servicedoc.Address, 0, len(l.Addresses)),
				Phones:    phones(l.Phones, l.ID), Schedules: schedules(l.Schedules, l.ID),
			}
			if out.Location.ID == "" {
				out.Location.ID = sal.LocationID
			}
			for j, a := range l.Addresses {
				if a.ID == "" {
					a.ID = out.Location.ID + "/addr/" + strconv.Itoa(j)
				}
				out.Location.Addresses = append(out.Location.Addresses, servicedoc.Address{
					ID: a.ID, Address1: a.Address1, Address2: a.Address2, City: a.City, Region: a.Region,
					StateProvince: a.StateProvince, PostalCode: a.PostalCode, Country: a.Country,
					AddressType: a.AddressType, District: a.District, Okrug: a.Okrug,
				})
			}
		} else {
			out.Location.ID = sal.LocationID
		}
		d.ServiceAtLocations = append(d.ServiceAtLocations, out)
	}
	return d
}

// term finds the city taxonomy term of an attribute: the configured mapping of the feed's term
// (by id, code or name) first, then a feed term that already is a city term id. An unmapped term is
// kept as the feed wrote it, and the validator says it is not in the taxonomy.
func (m mapper) term(a hAttribute) string {
	candidates := []string{a.TaxonomyTermID}
	if t := a.TaxonomyTerm; t != nil {
		candidates = append(candidates, t.ID, t.Code, t.Name)
	}
	for _, c := range candidates {
		if to, ok := m.taxonomy[c]; ok && c != "" {
			return to
		}
	}
	for _, c := range candidates {
		if _, ok := schemas.TaxonomyTermByID(c); ok {
			return c
		}
	}
	for _, c := range candidates {
		if c != "" {
			return c
		}
	}
	return ""
}

// scheme spells the identifier schemes the hub matches organizations on the way the hub does:
// feeds write org-id.guide prefixes (RU-INN) or the Russian abbreviations.
func scheme(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "INN", "RU-INN", "ИНН":
		return "INN"
	case "OGRN", "RU-OGRN", "ОГРН":
		return "OGRN"
	}
	return s
}

func phones(in []hPhone, parent string) []servicedoc.Phone {
	if len(in) == 0 {
		return nil
	}
	out := make([]servicedoc.Phone, len(in))
	for i, p := range in {
		if p.ID == "" {
			p.ID = parent + "/phone/" + strconv.Itoa(i)
		}
		out[i] = servicedoc.Phone{ID: p.ID, Number: p.Number, Extension: number(p.Extension), Type: p.Type, Description: p.Description}
	}
	return out
}

func schedules(in []hSchedule, parent string) []servicedoc.Schedule {
	if len(in) == 0 {
		return nil
	}
	out := make([]servicedoc.Schedule, len(in))
	for i, s := range in {
		if s.ID == "" {
			s.ID = parent + "/schedule/" + strconv.Itoa(i)
		}
		out[i] = servicedoc.Schedule{
			ID: s.ID, Description: s.Description, ValidFrom: s.ValidFrom, ValidTo: s.ValidTo, Freq: s.Freq,
			Byday: s.Byday, OpensAt: s.OpensAt, ClosesAt: s.ClosesAt, Notes: s.Notes,
		}
	}
	return out
}

// number keeps a raw JSON value unless it is absent or null.
func number(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return raw
}

// coordinate keeps a latitude or longitude as the feed wrote it (nil when absent).
func coordinate(raw json.RawMessage) any {
	if n := number(raw); n != nil {
		return n
	}
	return nil
}
