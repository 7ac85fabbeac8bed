package servicedoc_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors/servicedoc"
	"socialhub/schemas"
)

func TestEveryNameIsAField(t *testing.T) {
	t.Parallel()
	var f servicedoc.Fields
	seen := map[*string]bool{}
	for _, n := range servicedoc.Names() {
		p := f.Field(n)
		require.NotNil(t, p, n)
		require.False(t, seen[p], "%s shares a field", n)
		seen[p] = true
		*p = n
	}
	require.Len(t, seen, 20)
	require.Equal(t, "service_name", f.ServiceName)
	require.Nil(t, f.Field("nmae"))
}

func TestBuild(t *testing.T) {
	t.Parallel()
	doc, id, err := servicedoc.Build(servicedoc.Fields{
		ID: "S-1", OrganizationName: `ГБУ ТЦСО "Марьино"`, INN: "7723012345", ServiceName: "Семейная медиация",
		Category: "family-mediation", Address: "ул. Братиславская, д. 14", Okrug: "ЮВАО", District: "Марьино",
		Latitude: "55,6502", Longitude: "37.7436", Phone: "+7 (495) 123-45-67", Hours: "пн-пт 9:00–18:00",
	}, "")
	require.NoError(t, err)
	require.Equal(t, "S-1", id)
	require.JSONEq(t, `{"id":"S-1","name":"Семейная медиация","status":"active",
		"organization":{"id":"ГБУ ТЦСО \"Марьино\"","name":"ГБУ ТЦСО \"Марьино\"","organization_identifiers":[
			{"id":"ГБУ ТЦСО \"Марьино\"/INN","identifier_scheme":"INN","identifier_type":"ИНН","identifier":"7723012345"}]},
		"phones":[{"id":"S-1/phone/0","number":"+7 (495) 123-45-67"}],
		"schedules":[{"id":"S-1/schedule/0","description":"пн-пт 9:00–18:00"}],
		"attributes":[{"id":"S-1/attr/0","taxonomy_term_id":"family-mediation"}],
		"service_at_locations":[{"id":"S-1/sal/0","location":{"id":"ГБУ ТЦСО \"Марьино\"/loc/ул. Братиславская, д. 14",
			"location_type":"physical","name":"ГБУ ТЦСО \"Марьино\"","latitude":55.6502,"longitude":37.7436,
			"addresses":[{"id":"ГБУ ТЦСО \"Марьино\"/loc/ул. Братиславская, д. 14/addr","address_1":"ул. Братиславская, д. 14",
				"city":"Москва","state_province":"Москва","country":"RU","address_type":"physical","district":"Марьино","okrug":"ЮВАО"}]}}]}`,
		string(doc))
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	viol, err := v.Validate(schemas.EntityService, doc)
	require.NoError(t, err)
	require.Empty(t, viol)
	require.Equal(t, servicedoc.LocationID("ГБУ ТЦСО \"Марьино\"", "ул. Братиславская, д. 14"),
		"ГБУ ТЦСО \"Марьино\"/loc/ул. Братиславская, д. 14")
}

func TestCoordinate(t *testing.T) {
	t.Parallel()
	require.Nil(t, servicedoc.Coordinate(""))
	require.Equal(t, json.Number("55.75"), servicedoc.Coordinate("55,75"))
	require.Equal(t, "не число", servicedoc.Coordinate("не число"))
}
