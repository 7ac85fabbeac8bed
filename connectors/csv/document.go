package csv

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The record document's shape, as far as this kind fills it. Struct order fixes the JSON key order,
// so the same row always gives the same bytes.
type service struct {
	ID                 string              `json:"id"`
	Name               string              `json:"name"`
	Description        string              `json:"description,omitempty"`
	URL                string              `json:"url,omitempty"`
	Email              string              `json:"email,omitempty"`
	Status             string              `json:"status"`
	Organization       organization        `json:"organization"`
	Phones             []phone             `json:"phones,omitempty"`
	Schedules          []schedule          `json:"schedules,omitempty"`
	Attributes         []attribute         `json:"attributes,omitempty"`
	ServiceAtLocations []serviceAtLocation `json:"service_at_locations"`
}

type organization struct {
	ID                      string       `json:"id"`
	Name                    string       `json:"name"`
	Website                 string       `json:"website,omitempty"`
	OrganizationIdentifiers []identifier `json:"organization_identifiers,omitempty"`
}

type identifier struct {
	ID               string `json:"id"`
	IdentifierScheme string `json:"identifier_scheme"`
	IdentifierType   string `json:"identifier_type"`
	Identifier       string `json:"identifier"`
}

type phone struct {
	ID     string `json:"id"`
	Number string `json:"number"`
}

type schedule struct {
	ID          string `json:"id"`
	Description string `json:"description"`
}

type attribute struct {
	ID             string `json:"id"`
	TaxonomyTermID string `json:"taxonomy_term_id"`
}

type serviceAtLocation struct {
	ID       string   `json:"id"`
	Location location `json:"location"`
}

type location struct {
	ID           string    `json:"id"`
	LocationType string    `json:"location_type"`
	Name         string    `json:"name"`
	Latitude     any       `json:"latitude,omitempty"`
	Longitude    any       `json:"longitude,omitempty"`
	Addresses    []address `json:"addresses"`
}

type address struct {
	ID            string `json:"id"`
	Address1      string `json:"address_1"`
	City          string `json:"city"`
	StateProvince string `json:"state_province"`
	PostalCode    string `json:"postal_code,omitempty"`
	Country       string `json:"country"`
	AddressType   string `json:"address_type"`
	District      string `json:"district,omitempty"`
	Okrug         string `json:"okrug,omitempty"`
}

// row gives the trimmed value of a mapped field, "" when unmapped or missing.
type row struct {
	cells []string
	index map[string]int
}

func (r row) get(column string) string {
	if column == "" {
		return ""
	}
	i, ok := r.index[column]
	if !ok || i >= len(r.cells) {
		return ""
	}
	return strings.TrimSpace(r.cells[i])
}

// coordinate keeps what the file says: a number when it parses (a comma decimal separator is
// accepted), the text otherwise, so the validator reports it instead of the hub inventing a value.
func coordinate(s string) any {
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	if err != nil {
		return s
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
}

// buildDocument maps one row to the record document. Nested ids are derived from the row's ids, so
// they stay the same from one run to the next.
func buildDocument(r row, c Columns, city string) ([]byte, string, error) {
	id := r.get(c.ID)
	orgID := r.get(c.OrganizationID)
	orgName := r.get(c.OrganizationName)
	if orgID == "" {
		orgID = orgName
	}
	s := service{
		ID:          id,
		Name:        r.get(c.ServiceName),
		Description: r.get(c.ServiceDescription),
		URL:         r.get(c.Website),
		Email:       r.get(c.Email),
		Status:      "active",
		Organization: organization{
			ID:      orgID,
			Name:    orgName,
			Website: r.get(c.OrganizationWebsite),
		},
	}
	if inn := r.get(c.INN); inn != "" {
		s.Organization.OrganizationIdentifiers = append(s.Organization.OrganizationIdentifiers,
			identifier{ID: orgID + "/INN", IdentifierScheme: "INN", IdentifierType: "ИНН", Identifier: inn})
	}
	if ogrn := r.get(c.OGRN); ogrn != "" {
		s.Organization.OrganizationIdentifiers = append(s.Organization.OrganizationIdentifiers,
			identifier{ID: orgID + "/OGRN", IdentifierScheme: "OGRN", IdentifierType: "ОГРН", Identifier: ogrn})
	}
	if p := r.get(c.Phone); p != "" {
		s.Phones = []phone{{ID: id + "/phone/0", Number: p}}
	}
	if h := r.get(c.Hours); h != "" {
		s.Schedules = []schedule{{ID: id + "/schedule/0", Description: h}}
	}
	if cat := r.get(c.Category); cat != "" {
		s.Attributes = []attribute{{ID: id + "/attr/0", TaxonomyTermID: cat}}
	}
	locName := r.get(c.LocationName)
	if locName == "" {
		locName = orgName
	}
	addr := r.get(c.Address)
	locID := orgID + "/loc/" + addr
	s.ServiceAtLocations = []serviceAtLocation{{
		ID: id + "/sal/0",
		Location: location{
			ID:           locID,
			LocationType: "physical",
			Name:         locName,
			Latitude:     coordinate(r.get(c.Latitude)),
			Longitude:    coordinate(r.get(c.Longitude)),
			Addresses: []address{{
				ID: locID + "/addr", Address1: addr, City: city, StateProvince: city,
				PostalCode: r.get(c.PostalCode), Country: "RU", AddressType: "physical",
				District: r.get(c.District), Okrug: r.get(c.Okrug),
			}},
		},
	}}
	b, err := json.Marshal(s)
	return b, id, err
}
