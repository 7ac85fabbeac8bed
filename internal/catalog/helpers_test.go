package catalog_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/pgtest"
)

type testBundle struct {
	db    *pgtest.DB
	store *catalog.Store
}

func setup(t testing.TB) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, catalog.Migrations())
	return testBundle{db: db, store: catalog.NewStore(db.Pool)}
}

// apply runs Apply in its own transaction and commits.
func (b testBundle) apply(t testing.TB, recs ...catalog.Record) []catalog.Change {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	chs, err := b.store.Apply(ctx, tx, recs)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return chs
}

// requireOrgNamesCurrent checks that every service is found by its organization's current name
// (its org_name, which search reads).
func (b testBundle) requireOrgNamesCurrent(t testing.TB) {
	t.Helper()
	var stale int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM catalog_services s JOIN catalog_organizations o ON o.id = s.organization_id
		WHERE s.org_name <> coalesce(o.name, '')`).Scan(&stale))
	require.Zero(t, stale, "services whose org_name is not their organization's name")
}

// serviceDoc is a service record document like the ones connectors produce.
func serviceDoc(id, name, description, orgID, orgName, term string) map[string]any {
	loc := orgID + "/loc/Марьино"
	return map[string]any{
		"id": id, "name": name, "description": description, "status": "active",
		"url": "https://tcso-marino.mos.ru", "email": "marino@mos.ru",
		"organization": map[string]any{
			"id": orgID, "name": orgName, "website": "https://tcso-marino.mos.ru",
			"organization_identifiers": []any{map[string]any{
				"id": orgID + "/INN", "identifier_scheme": "INN", "identifier_type": "ИНН", "identifier": innOf(orgID),
			}},
		},
		"phones":     []any{map[string]any{"id": id + "/phone/0", "number": "+7 (495) 123-45-67"}},
		"schedules":  []any{map[string]any{"id": id + "/schedule/0", "description": "пн-пт 9:00–18:00"}},
		"attributes": []any{map[string]any{"id": id + "/attr/0", "taxonomy_term_id": term}},
		"service_at_locations": []any{map[string]any{
			"id": id + "/sal/0",
			"location": map[string]any{
				"id": loc, "location_type": "physical", "name": "ТЦСО Марьино, филиал",
				"latitude": 55.65, "longitude": 37.74,
				"addresses": []any{map[string]any{
					"id": loc + "/addr", "address_1": "ул. Братиславская, д. 14", "city": "Москва",
					"state_province": "Москва", "postal_code": "109451", "country": "RU", "address_type": "physical",
					"district": "Марьино", "okrug": "ЮВАО",
				}},
			},
		}},
	}
}

// innOf gives each test organization an INN of its own: organizations with one INN are one legal
// entity, and entity resolution merges them.
func innOf(orgID string) string {
	sum := sha256.Sum256([]byte(orgID))
	return fmt.Sprintf("77%08d", binary.BigEndian.Uint32(sum[:])%100000000)
}

func upsert(t testing.TB, source string, doc map[string]any) catalog.Record {
	t.Helper()
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	sum := sha256.Sum256(raw) // json.Marshal sorts keys: good enough as the canonical JSON here
	return catalog.Record{
		Source: source, ExternalID: doc["id"].(string), Op: catalog.OpUpsert,
		ContentHash: hex.EncodeToString(sum[:]), Doc: raw, SeenAt: time.Now(),
	}
}

func del(source, id string) catalog.Record {
	return catalog.Record{Source: source, ExternalID: id, Op: catalog.OpDelete, SeenAt: time.Now()}
}

func mediation(id string) map[string]any {
	return serviceDoc(id, "Семейная медиация", "Помощь медиатора при конфликтах в семье",
		"ORG-12", `ГБУ ТЦСО "Марьино"`, "family-mediation")
}

func decode(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// ops summarizes changes as "type:op:version".
func ops(chs []catalog.Change) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = fmt.Sprintf("%s:%s:%d", c.EntityType, c.Op, c.Version)
	}
	return out
}
