package schemas_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/schemas"
)

// validService is the smallest service document the profile accepts, plus one of each nested kind.
func validService() map[string]any {
	return map[string]any{
		"id":     "DSZN-000001",
		"name":   "Семейная медиация",
		"status": "active",
		"email":  "mediation@family.mos.ru",
		"url":    "https://family.mos.ru",
		"organization": map[string]any{
			"id":   "ORG-1",
			"name": `ГБУ "Центр семейной медиации и психологической поддержки"`,
			"organization_identifiers": []any{
				map[string]any{"id": "ORG-1/INN", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": "7701234568"},
				map[string]any{"id": "ORG-1/OGRN", "identifier_scheme": "OGRN", "identifier_type": "ОГРН", "identifier": "1027700132195"},
			},
		},
		"phones":     []any{map[string]any{"id": "p1", "number": "+7 (495) 123-45-67"}},
		"schedules":  []any{map[string]any{"id": "s1", "description": "пн-пт 9:00–18:00"}},
		"attributes": []any{map[string]any{"id": "a1", "taxonomy_term_id": "family-mediation"}},
		"service_at_locations": []any{map[string]any{
			"id": "sal1",
			"location": map[string]any{
				"id": "loc1", "location_type": "physical", "name": "Филиал «Марьино»",
				"latitude": 55.65, "longitude": 37.74,
				"addresses": []any{map[string]any{
					"id": "addr1", "address_1": "ул. Братиславская, д. 14", "city": "Москва", "country": "RU",
					"address_type": "physical", "postal_code": "109451", "district": "Марьино", "okrug": "ЮВАО",
				}},
			},
		}},
		"metadata": []any{map[string]any{
			"id": "m1", "last_action_date": "2025-06-01", "last_action_type": "create", "field_name": "name",
			"previous_value": "", "replacement_value": "Семейная медиация", "updated_by": "test",
		}},
	}
}

func loc(d map[string]any) map[string]any {
	return d["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
}

func addr(d map[string]any) map[string]any {
	return loc(d)["addresses"].([]any)[0].(map[string]any)
}

func ident(d map[string]any, i int) map[string]any {
	return d["organization"].(map[string]any)["organization_identifiers"].([]any)[i].(map[string]any)
}

func newValidator(t testing.TB) *schemas.Validator {
	t.Helper()
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	return v
}

func TestValidateService(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	for _, tc := range []struct {
		name   string
		mutate func(d map[string]any)
		field  string // "" when the document must be valid
	}{
		{"valid", func(map[string]any) {}, ""},
		{"extension properties allowed", func(d map[string]any) { d["eligibility_rules"] = map[string]any{"cel": "age >= 60"} }, ""},
		{"OGRNIP and 12-digit INN", func(d map[string]any) {
			ident(d, 0)["identifier"] = "500100732259"
			ident(d, 1)["identifier_scheme"] = "OGRNIP"
			ident(d, 1)["identifier"] = "304500116000157"
		}, ""},
		{"name missing", func(d map[string]any) { delete(d, "name") }, "name"},
		{"name empty", func(d map[string]any) { d["name"] = "" }, "name"},
		{"id missing", func(d map[string]any) { delete(d, "id") }, "id"},
		{"status unknown", func(d map[string]any) { d["status"] = "open" }, "status"},
		{"status missing", func(d map[string]any) { delete(d, "status") }, "status"},
		{"email not an address", func(d map[string]any) { d["email"] = "не-почта" }, "email"},
		{"email without domain dot", func(d map[string]any) { d["email"] = "info@mos" }, "email"},
		{"url without scheme", func(d map[string]any) { d["url"] = "ftp//broken" }, "url"},
		{"url not http", func(d map[string]any) { d["url"] = "ftp://files.mos.ru" }, "url"},
		{"organization missing", func(d map[string]any) { delete(d, "organization") }, "organization"},
		{"organization name missing", func(d map[string]any) { delete(d["organization"].(map[string]any), "name") }, "organization.name"},
		{"organization website", func(d map[string]any) { d["organization"].(map[string]any)["website"] = "mos.ru" }, "organization.website"},
		{"INN too short", func(d map[string]any) { ident(d, 0)["identifier"] = "770123456" }, "organization.organization_identifiers.0.identifier"},
		{"OGRN too short", func(d map[string]any) { ident(d, 1)["identifier"] = "102770013219" }, "organization.organization_identifiers.1.identifier"},
		{"identifier scheme unknown", func(d map[string]any) { ident(d, 0)["identifier_scheme"] = "KPP" }, "organization.organization_identifiers.0.identifier_scheme"},
		{"no service_at_locations", func(d map[string]any) { d["service_at_locations"] = []any{} }, "service_at_locations"},
		{"service_at_locations missing", func(d map[string]any) { delete(d, "service_at_locations") }, "service_at_locations"},
		{"location missing", func(d map[string]any) {
			delete(d["service_at_locations"].([]any)[0].(map[string]any), "location")
		}, "service_at_locations.0.location"},
		{"location type unknown", func(d map[string]any) { loc(d)["location_type"] = "office" }, "service_at_locations.0.location.location_type"},
		{"location name missing", func(d map[string]any) { delete(loc(d), "name") }, "service_at_locations.0.location.name"},
		{"latitude out of range", func(d map[string]any) { loc(d)["latitude"] = 155.5 }, "service_at_locations.0.location.latitude"},
		{"latitude as text", func(d map[string]any) { loc(d)["latitude"] = "55,7" }, "service_at_locations.0.location.latitude"},
		{"longitude out of range", func(d map[string]any) { loc(d)["longitude"] = -200 }, "service_at_locations.0.location.longitude"},
		{"address_1 empty", func(d map[string]any) { addr(d)["address_1"] = "" }, "service_at_locations.0.location.addresses.0.address_1"},
		{"address city missing", func(d map[string]any) { delete(addr(d), "city") }, "service_at_locations.0.location.addresses.0.city"},
		{"okrug unknown", func(d map[string]any) { addr(d)["okrug"] = "Юго-Восточный" }, "service_at_locations.0.location.addresses.0.okrug"},
		{"country not a code", func(d map[string]any) { addr(d)["country"] = "Россия" }, "service_at_locations.0.location.addresses.0.country"},
		{"taxonomy term unknown", func(d map[string]any) {
			d["attributes"].([]any)[0].(map[string]any)["taxonomy_term_id"] = "unknown-category"
		}, "attributes.0.taxonomy_term_id"},
		{"phone number letters", func(d map[string]any) { d["phones"].([]any)[0].(map[string]any)["number"] = "звоните нам" }, "phones.0.number"},
		{"schedule id missing", func(d map[string]any) { delete(d["schedules"].([]any)[0].(map[string]any), "id") }, "schedules.0.id"},
		{"metadata incomplete", func(d map[string]any) { delete(d["metadata"].([]any)[0].(map[string]any), "updated_by") }, "metadata.0.updated_by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := validService()
			tc.mutate(d)
			b, err := json.Marshal(d)
			require.NoError(t, err)
			got, err := v.Validate(schemas.EntityService, b)
			require.NoError(t, err)
			if tc.field == "" {
				require.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "violations: %+v", got)
			require.Equal(t, tc.field, got[0].Field)
			require.NotEmpty(t, got[0].Message)
		})
	}
}

func TestValidateMalformed(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	for name, doc := range map[string]string{
		"truncated":        `{"id": "x", "name": `,
		"trailing garbage": `{"id": "x"} {"id": "y"}`,
		"empty":            ``,
	} {
		got, err := v.Validate(schemas.EntityService, []byte(doc))
		require.NoError(t, err, name)
		require.Len(t, got, 1, name)
		require.Equal(t, "(root)", got[0].Field, name)
		require.True(t, strings.HasPrefix(got[0].Message, "invalid JSON: "), name)
	}
	got, err := v.Validate(schemas.EntityService, []byte(`[1, 2]`))
	require.NoError(t, err)
	require.Equal(t, []schemas.Violation{{Field: "(root)", Message: got[0].Message}}, got)
}

func TestValidateSeveralViolations(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	d := validService()
	delete(d, "name")
	d["email"] = "не-почта"
	loc(d)["latitude"] = 155.5
	b, err := json.Marshal(d)
	require.NoError(t, err)
	got, err := v.Validate(schemas.EntityService, b)
	require.NoError(t, err)
	fields := make([]string, 0, len(got))
	for _, x := range got {
		fields = append(fields, x.Field)
	}
	require.Equal(t, []string{"email", "name", "service_at_locations.0.location.latitude"}, fields)
}

func TestValidateOtherEntities(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	for _, tc := range []struct {
		entity, doc, field string
	}{
		{schemas.EntityOrganization, `{"id": "o1", "name": "АНО \"Помощь\""}`, ""},
		{schemas.EntityOrganization, `{"id": "o1"}`, "name"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "email": "x"}`, "email"},
		{schemas.EntityOrganization, `{"id": "inn-7707083893", "name": "АНО \"Помощь\"", "funding": [{"id": "24-1-000001", "amount": "2000000.00", "currency": "RUB", "start_date": "2024-03-01"}]}`, ""},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": [{"amount": "1.00"}]}`, "funding.0.id"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": [{"id": "f", "amount": "2 000 000,00"}]}`, "funding.0.amount"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": [{"id": "f", "amount": 2000000}]}`, "funding.0.amount"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": [{"id": "f", "amount": "2000000.5"}]}`, "funding.0.amount"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": [{"id": "f", "currency": "USD"}]}`, "funding.0.currency"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": [{"id": "f", "start_date": "01.03.2024"}]}`, "funding.0.start_date"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "funding": {"id": "f"}}`, "funding"},
		{schemas.EntityOrganization, `{"id": "o1", "name": "x", "organization_identifiers": [{"id": "i", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": "77070838"}]}`, "organization_identifiers.0.identifier"},
		{schemas.EntityLocation, `{"id": "l1", "location_type": "virtual", "name": "Онлайн"}`, ""},
		{schemas.EntityLocation, `{"id": "l1", "name": "Онлайн"}`, "location_type"},
		{schemas.EntityLocation, `{"id": "l1", "location_type": "virtual", "name": "Онлайн", "url": "zoom"}`, "url"},
		{schemas.EntityServiceAtLocation, `{"id": "s1", "location": {"id": "l1", "location_type": "postal", "name": "Почта"}}`, ""},
		{schemas.EntityServiceAtLocation, `{"id": "s1"}`, "location"},
		{schemas.EntityServiceAtLocation, `{"id": "s1", "location": {"id": "l1", "location_type": "postal", "name": "П", "latitude": 91}}`, "location.latitude"},
	} {
		got, err := v.Validate(tc.entity, []byte(tc.doc))
		require.NoError(t, err)
		if tc.field == "" {
			require.Nil(t, got, "%s %s", tc.entity, tc.doc)
			continue
		}
		require.Len(t, got, 1, "%s %s: %+v", tc.entity, tc.doc, got)
		require.Equal(t, tc.field, got[0].Field, "%s %s", tc.entity, tc.doc)
	}
}

func TestValidateUnknownEntity(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	got, err := v.Validate("grant", []byte(`{}`))
	require.ErrorIs(t, err, schemas.ErrUnknownEntity)
	require.Nil(t, got)
}

func TestValidateConcurrently(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	good, err := json.Marshal(validService())
	require.NoError(t, err)
	bad := validService()
	loc(bad)["latitude"] = 155.5
	badb, err := json.Marshal(bad)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				g, err := v.Validate(schemas.EntityService, good)
				if err != nil || g != nil {
					errs <- errors.New("valid document reported invalid")
					return
				}
				b, err := v.Validate(schemas.EntityService, badb)
				if err != nil || len(b) != 1 || b[0].Field != "service_at_locations.0.location.latitude" {
					errs <- errors.New("invalid document reported wrongly")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestExamples checks that every document in testdata/<entity>/ validates as that entity.
func TestExamples(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	paths, err := filepath.Glob("testdata/*/*.json")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(paths), 5)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		got, err := v.Validate(filepath.Base(filepath.Dir(p)), b)
		require.NoError(t, err, p)
		require.Nil(t, got, "%s: %+v", p, got)
	}
}

func TestSchemaFiles(t *testing.T) {
	t.Parallel()
	for _, entity := range []string{schemas.EntityService, schemas.EntityOrganization, schemas.EntityLocation,
		schemas.EntityServiceAtLocation, "address", "phone", "schedule", "attribute", "taxonomy_term",
		"organization_identifier", "metadata", schemas.EntityResident, "funding"} {
		id := schemas.SchemaID(entity)
		require.Equal(t, "https://socialhub.city/schemas/hsds-3.0/v2/"+entity+".json", id)
		for v := 1; v <= schemas.CurrentVersion; v++ {
			b, err := schemas.Schema(entity, v)
			require.NoError(t, err)
			var s struct {
				Schema string `json:"$schema"`
				ID     string `json:"$id"`
			}
			require.NoError(t, json.Unmarshal(b, &s))
			require.Equal(t, "http://json-schema.org/draft-07/schema#", s.Schema, entity)
			require.Equal(t, schemas.SchemaIDVersion(entity, v), s.ID)
		}
		// The files at the top are version 1, as written.
		b, err := fs.ReadFile(schemas.FS(), entity+".json")
		require.NoError(t, err)
		v1, err := schemas.Schema(entity, 1)
		require.NoError(t, err)
		require.Equal(t, string(b), string(v1))
	}
	require.Empty(t, schemas.SchemaID("grant"))
	require.Empty(t, schemas.SchemaID("taxonomy"))
	_, err := fs.Stat(schemas.FS(), "taxonomy.json")
	require.NoError(t, err)
	_, err = fs.Stat(schemas.FS(), "districts.json")
	require.NoError(t, err)
}

// BenchmarkValidateService validates a record as the csv connector builds it ("department-row")
// and a document using most of the profile ("full").
func BenchmarkValidateService(b *testing.B) {
	v := newValidator(b)
	for _, name := range []string{"department-row", "full"} {
		b.Run(name, func(b *testing.B) {
			doc, err := os.ReadFile("testdata/service/" + name + ".json")
			require.NoError(b, err)
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if got, err := v.Validate(schemas.EntityService, doc); err != nil || got != nil {
					b.Fatalf("unexpected result: %v %v", got, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
