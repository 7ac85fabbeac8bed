package schemas_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/schemas"
)

func decode(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

func TestParseSchemaID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]struct {
		name    string
		version int
	}{
		"https://socialhub.city/schemas/hsds-3.0/v1/service.json":      {"service", 1},
		"https://socialhub.city/schemas/hsds-3.0/v2/service.json":      {"service", 2},
		"https://socialhub.city/schemas/hsds-3.0/v2/organization.json": {"organization", 2},
		"https://socialhub.city/schemas/hsds-3.0/v1/phone.json":        {"phone", 1},
		// Events written before the profile had versions claim version 1.
		"https://socialhub.city/schemas/hsds-3.0/service.json":  {"service", 1},
		"https://socialhub.city/schemas/hsds-3.0/resident.json": {"resident", 1},
	} {
		name, version, err := schemas.ParseSchemaID(id)
		require.NoError(t, err, id)
		require.Equal(t, want.name, name, id)
		require.Equal(t, want.version, version, id)
		if version > 1 || id == schemas.SchemaIDVersion(name, 1) {
			require.Equal(t, id, schemas.SchemaIDVersion(name, version), "round trip")
		}
	}
	for _, id := range []string{
		"", "service", "https://example.org/service.json",
		"https://socialhub.city/schemas/hsds-3.0/v3/service.json",
		"https://socialhub.city/schemas/hsds-3.0/v0/service.json",
		"https://socialhub.city/schemas/hsds-3.0/vx/service.json",
		"https://socialhub.city/schemas/hsds-3.0/v1/spaceship.json",
		"https://socialhub.city/schemas/hsds-3.0/v1/service",
		"https://socialhub.city/schemas/hsds-3.0/v1/x/service.json",
		"https://socialhub.city/schemas/hsds-3.0/v1/taxonomy.json",
	} {
		_, _, err := schemas.ParseSchemaID(id)
		require.ErrorIs(t, err, schemas.ErrUnknownSchema, id)
	}
	require.Empty(t, schemas.SchemaIDVersion(schemas.EntityService, 0))
	require.Empty(t, schemas.SchemaIDVersion(schemas.EntityService, schemas.CurrentVersion+1))
}

func TestSchemasListing(t *testing.T) {
	t.Parallel()
	list := schemas.Schemas()
	require.Len(t, list, 14) // application_event included
	byName := map[string]schemas.SchemaInfo{}
	for _, s := range list {
		byName[s.Name] = s
		require.Len(t, s.Versions, schemas.CurrentVersion, s.Name)
		for i, v := range s.Versions {
			require.Equal(t, i+1, v.Version)
			require.Equal(t, schemas.SchemaIDVersion(s.Name, v.Version), v.ID)
		}
	}
	require.True(t, byName["service"].Entity)
	require.False(t, byName["phone"].Entity)
	require.True(t, byName["service"].Versions[1].Changed, "version 2 changed service")
	require.False(t, byName["organization"].Versions[1].Changed, "and nothing else")

	_, err := schemas.Schema("service", 3)
	require.ErrorIs(t, err, schemas.ErrUnknownSchema)
	_, err = schemas.Schema("taxonomy", 1)
	require.ErrorIs(t, err, schemas.ErrUnknownSchema)
}

// A version 1 service with fees is valid in version 1, refused in version 2, and valid again once
// upgraded, with the fees in fees_description.
func TestServiceVersion2(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	d := validService()
	d["fees"] = "бесплатно"
	b, err := json.Marshal(d)
	require.NoError(t, err)

	got, err := v.ValidateVersion(schemas.EntityService, 1, b)
	require.NoError(t, err)
	require.Nil(t, got)
	got, err = v.ValidateVersion(schemas.EntityService, 2, b)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "fees", got[0].Field)

	doc := decode(t, b)
	doc, err = schemas.Upgrade(schemas.EntityService, 1, doc)
	require.NoError(t, err)
	m := doc.(map[string]any)
	require.NotContains(t, m, "fees")
	require.Equal(t, "бесплатно", m["fees_description"])
	got, err = v.ValidateValue(schemas.EntityService, schemas.CurrentVersion, doc)
	require.NoError(t, err)
	require.Nil(t, got)

	// A version 2 document comes through the upgrade of version 2 as it is.
	same, err := schemas.Upgrade(schemas.EntityService, 2, doc)
	require.NoError(t, err)
	require.Equal(t, doc, same)
	_, err = schemas.Upgrade(schemas.EntityService, 0, doc)
	require.ErrorIs(t, err, schemas.ErrUnknownSchema)
}

func TestUpgradeFees(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{`{"fees": "бесплатно"}`, `{"fees_description": "бесплатно"}`},
		{`{"fees": "бесплатно", "fees_description": "для пенсионеров"}`, `{"fees_description": "для пенсионеров; бесплатно"}`},
		{`{"fees": "бесплатно", "fees_description": "бесплатно для всех"}`, `{"fees_description": "бесплатно для всех"}`},
		{`{"fees": 500}`, `{"fees_description": "500"}`},
		{`{"fees": {"amount": 500}}`, `{"fees_description": "{\"amount\":500}"}`},
		{`{"fees": null}`, `{}`},
		{`{"fees": "  "}`, `{}`},
		{`{"name": "x"}`, `{"name": "x"}`},
	} {
		doc, err := schemas.Upgrade(schemas.EntityService, 1, decode(t, []byte(tc.in)))
		require.NoError(t, err)
		got, err := json.Marshal(doc)
		require.NoError(t, err)
		require.JSONEq(t, tc.want, string(got), tc.in)
	}
	// Other entities keep their fees: version 2 changed only the service.
	doc, err := schemas.Upgrade(schemas.EntityOrganization, 1, decode(t, []byte(`{"fees": "x"}`)))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"fees": "x"}, doc)
}

// Validating a decoded document says what validating its bytes says, in every version.
func TestValueAndBytesAgree(t *testing.T) {
	t.Parallel()
	v := newValidator(t)
	for _, d := range []map[string]any{validService(), {"id": "x"}, {"id": "x", "name": "y", "status": "open"}} {
		b, err := json.Marshal(d)
		require.NoError(t, err)
		for version := 1; version <= schemas.CurrentVersion; version++ {
			fromBytes, err := v.ValidateVersion(schemas.EntityService, version, b)
			require.NoError(t, err)
			fromValue, err := v.ValidateValue(schemas.EntityService, version, decode(t, b))
			require.NoError(t, err)
			require.Equal(t, fromBytes, fromValue)
		}
	}
	_, err := v.ValidateValue("spaceship", 1, map[string]any{})
	require.ErrorIs(t, err, schemas.ErrUnknownEntity)
	_, err = v.ValidateValue(schemas.EntityService, 9, map[string]any{})
	require.ErrorIs(t, err, schemas.ErrUnknownSchema)
}
