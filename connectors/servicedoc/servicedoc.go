package servicedoc

import (
	"encoding/json"
	"strconv"
	"strings"
)

// DefaultCity fills address.city and state_province when a kind's options name none.
const DefaultCity = "Москва"

// Fields are the flat values a row-shaped source maps to the record document. Their names in
// options (csv columns, httpjson fields) are the yaml tags, listed by Names.
type Fields struct {
	ID                 string `yaml:"id"`
	OrganizationID     string `yaml:"organization_id"`
	OrganizationName   string `yaml:"organization_name"`
	INN                string `yaml:"inn"`
	OGRN               string `yaml:"ogrn"`
	ServiceName        string `yaml:"service_name"`
	ServiceDescription string `yaml:"service_description"`
	Category           string `yaml:"category"`
	LocationName       string `yaml:"location_name"`
	Address            string `yaml:"address"`
	District           string `yaml:"district"`
	Okrug              string `yaml:"okrug"`
	PostalCode         string `yaml:"postal_code"`
	Latitude           string `yaml:"latitude"`
	Longitude          string `yaml:"longitude"`
	Phone              string `yaml:"phone"`
	Email              string `yaml:"email"`
	Website            string `yaml:"website"` // the service's page
	Hours              string `yaml:"hours"`
	// OrganizationWebsite is the organization's own site, apart from the service's page.
	OrganizationWebsite string `yaml:"organization_website"`
}

// names lists the fields in document order, with their option names.
var names = []string{
	"id", "organization_id", "organization_name", "inn", "ogrn", "service_name",
	"service_description", "category", "location_name", "address", "district", "okrug",
	"postal_code", "latitude", "longitude", "phone", "email", "website", "hours",
	"organization_website",
}

// Names returns the option names of the fields, in document order.
func Names() []string { return append([]string(nil), names...) }

// Field returns the field named name (an option name of Names), nil for an unknown name. Kinds use
// it to fill Fields from a name-keyed mapping without a map per record.
func (f *Fields) Field(name string) *string {
	switch name {
	case "id":
		return &f.ID
	case "organization_id":
		return &f.OrganizationID
	case "organization_name":
		return &f.OrganizationName
	case "inn":
		return &f.INN
	case "ogrn":
		return &f.OGRN
	case "service_name":
		return &f.ServiceName
	case "service_description":
		return &f.ServiceDescription
	case "category":
		return &f.Category
	case "location_name":
		return &f.LocationName
	case "address":
		return &f.Address
	case "district":
		return &f.District
	case "okrug":
		return &f.Okrug
	case "postal_code":
		return &f.PostalCode
	case "latitude":
		return &f.Latitude
	case "longitude":
		return &f.Longitude
	case "phone":
		return &f.Phone
	case "email":
		return &f.Email
	case "website":
		return &f.Website
	case "hours":
		return &f.Hours
	case "organization_website":
		return &f.OrganizationWebsite
	}
	return nil
}

// Service is the record document. Fields a kind leaves empty are left out, except those the
// profile requires, which are always written so the validator reports them by name.
type Service struct {
	ID                     string              `json:"id"`
	Name                   string              `json:"name"`
	AlternateName          string              `json:"alternate_name,omitempty"`
	Description            string              `json:"description,omitempty"`
	URL                    string              `json:"url,omitempty"`
	Email                  string              `json:"email,omitempty"`
	Status                 string              `json:"status"`
	InterpretationServices string              `json:"interpretation_services,omitempty"`
	ApplicationProcess     string              `json:"application_process,omitempty"`
	FeesDescription        string              `json:"fees_description,omitempty"`
	Accreditations         string              `json:"accreditations,omitempty"`
	EligibilityDescription string              `json:"eligibility_description,omitempty"`
	MinimumAge             json.RawMessage     `json:"minimum_age,omitempty"`
	MaximumAge             json.RawMessage     `json:"maximum_age,omitempty"`
	AssuredDate            string              `json:"assured_date,omitempty"`
	Alert                  string              `json:"alert,omitempty"`
	LastModified           string              `json:"last_modified,omitempty"`
	Organization           Organization        `json:"organization"`
	Phones                 []Phone             `json:"phones,omitempty"`
	Schedules              []Schedule          `json:"schedules,omitempty"`
	Attributes             []Attribute         `json:"attributes,omitempty"`
	ServiceAtLocations     []ServiceAtLocation `json:"service_at_locations"`
}

// Organization is the service's provider.
type Organization struct {
	ID                      string       `json:"id"`
	Name                    string       `json:"name"`
	AlternateName           string       `json:"alternate_name,omitempty"`
	Description             string       `json:"description,omitempty"`
	Email                   string       `json:"email,omitempty"`
	Website                 string       `json:"website,omitempty"`
	LegalStatus             string       `json:"legal_status,omitempty"`
	TaxID                   string       `json:"tax_id,omitempty"`
	OrganizationIdentifiers []Identifier `json:"organization_identifiers,omitempty"`
	Phones                  []Phone      `json:"phones,omitempty"`
}

// Identifier is an organization_identifier (INN, OGRN, or what a feed gives).
type Identifier struct {
	ID               string `json:"id"`
	IdentifierScheme string `json:"identifier_scheme"`
	IdentifierType   string `json:"identifier_type"`
	Identifier       string `json:"identifier"`
}

// Phone is a telephone number.
type Phone struct {
	ID          string          `json:"id"`
	Number      string          `json:"number"`
	Extension   json.RawMessage `json:"extension,omitempty"`
	Type        string          `json:"type,omitempty"`
	Description string          `json:"description,omitempty"`
}

// Schedule is when something is open: free text, or the RFC 5545 terms HSDS uses.
type Schedule struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	ValidFrom   string `json:"valid_from,omitempty"`
	ValidTo     string `json:"valid_to,omitempty"`
	Freq        string `json:"freq,omitempty"`
	Byday       string `json:"byday,omitempty"`
	OpensAt     string `json:"opens_at,omitempty"`
	ClosesAt    string `json:"closes_at,omitempty"`
	Notes       string `json:"notes,omitempty"`
}

// Attribute links the object to a term of the city taxonomy.
type Attribute struct {
	ID             string `json:"id"`
	TaxonomyTermID string `json:"taxonomy_term_id"`
	LinkType       string `json:"link_type,omitempty"`
	Value          string `json:"value,omitempty"`
}

// ServiceAtLocation is the service delivered at one location.
type ServiceAtLocation struct {
	ID          string     `json:"id"`
	Description string     `json:"description,omitempty"`
	Phones      []Phone    `json:"phones,omitempty"`
	Schedules   []Schedule `json:"schedules,omitempty"`
	Location    Location   `json:"location"`
}

// Location is a place where services are delivered. Latitude and Longitude hold what the source
// says: a json.Number when it is a number, the source's text or raw JSON otherwise, so the
// validator reports a bad value instead of the hub inventing one.
type Location struct {
	ID           string     `json:"id"`
	LocationType string     `json:"location_type"`
	Name         string     `json:"name"`
	URL          string     `json:"url,omitempty"`
	Description  string     `json:"description,omitempty"`
	Latitude     any        `json:"latitude,omitempty"`
	Longitude    any        `json:"longitude,omitempty"`
	Addresses    []Address  `json:"addresses"`
	Phones       []Phone    `json:"phones,omitempty"`
	Schedules    []Schedule `json:"schedules,omitempty"`
}

// Address is a location's address, with the city's district and okrug.
type Address struct {
	ID            string `json:"id"`
	Address1      string `json:"address_1"`
	Address2      string `json:"address_2,omitempty"`
	City          string `json:"city"`
	Region        string `json:"region,omitempty"`
	StateProvince string `json:"state_province"`
	PostalCode    string `json:"postal_code,omitempty"`
	Country       string `json:"country"`
	AddressType   string `json:"address_type"`
	District      string `json:"district,omitempty"`
	Okrug         string `json:"okrug,omitempty"`
}

// Coordinate keeps what the source says: a number when it parses (a comma decimal separator is
// accepted), the text otherwise, nil when empty.
func Coordinate(s string) any {
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	if err != nil {
		return s
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
}

// OrganizationID is the organization id Build writes: the row's organization id, or its name
// when the row has none.
func OrganizationID(f Fields) string {
	if f.OrganizationID != "" {
		return f.OrganizationID
	}
	return f.OrganizationName
}

// LocationID is the location id Build writes for an organization's address: the same address of
// the same organization is the same location from row to row and run to run.
func LocationID(orgID, address string) string { return orgID + "/loc/" + address }

// Build maps flat fields to the record document and returns it with the service's id. Nested ids
// are derived from the row's ids, so they stay the same from one run to the next. city fills
// address.city and state_province (DefaultCity when empty).
func Build(f Fields, city string) (json.RawMessage, string, error) {
	if city == "" {
		city = DefaultCity
	}
	id := f.ID
	orgID := OrganizationID(f)
	s := Service{
		ID:          id,
		Name:        f.ServiceName,
		Description: f.ServiceDescription,
		URL:         f.Website,
		Email:       f.Email,
		Status:      "active",
		Organization: Organization{
			ID:      orgID,
			Name:    f.OrganizationName,
			Website: f.OrganizationWebsite,
		},
	}
	if f.INN != "" {
		s.Organization.OrganizationIdentifiers = append(s.Organization.OrganizationIdentifiers,
			Identifier{ID: orgID + "/INN", IdentifierScheme: "INN", IdentifierType: "ИНН", Identifier: f.INN})
	}
	if f.OGRN != "" {
		s.Organization.OrganizationIdentifiers = append(s.Organization.OrganizationIdentifiers,
			Identifier{ID: orgID + "/OGRN", IdentifierScheme: "OGRN", IdentifierType: "ОГРН", Identifier: f.OGRN})
	}
	if f.Phone != "" {
		s.Phones = []Phone{{ID: id + "/phone/0", Number: f.Phone}}
	}
	if f.Hours != "" {
		s.Schedules = []Schedule{{ID: id + "/schedule/0", Description: f.Hours}}
	}
	if f.Category != "" {
		s.Attributes = []Attribute{{ID: id + "/attr/0", TaxonomyTermID: f.Category}}
	}
	locName := f.LocationName
	if locName == "" {
		locName = f.OrganizationName
	}
	locID := LocationID(orgID, f.Address)
	s.ServiceAtLocations = []ServiceAtLocation{{
		ID: id + "/sal/0",
		Location: Location{
			ID:           locID,
			LocationType: "physical",
			Name:         locName,
			Latitude:     Coordinate(f.Latitude),
			Longitude:    Coordinate(f.Longitude),
			Addresses: []Address{{
				ID: locID + "/addr", Address1: f.Address, City: city, StateProvince: city,
				PostalCode: f.PostalCode, Country: "RU", AddressType: "physical",
				District: f.District, Okrug: f.Okrug,
			}},
		},
	}}
	b, err := json.Marshal(s)
	return b, id, err
}

// Marshal encodes a document built by hand (the hsds kind) the way Build does.
func Marshal(s *Service) (json.RawMessage, error) {
	return json.Marshal(s)
}
