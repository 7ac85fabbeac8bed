package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
	"socialhub/internal/match"
)

// feedDoc is the mediation service as another department's feed writes it: its own ids, the full
// legal name, the same INN, the point's address spelled out and coordinates rounded.
func feedDoc(id string) map[string]any {
	doc := serviceDoc(id, "Семейная медиация", "Медиация для семей", "feed-org-1",
		`Государственное бюджетное учреждение Территориальный центр социального обслуживания «Марьино»`, "family-mediation")
	org := doc["organization"].(map[string]any)
	org["organization_identifiers"].([]any)[0].(map[string]any)["identifier"] = innOf("ORG-12")
	org["email"] = "marino@social.mos.ru"
	loc := doc["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)
	loc["id"] = "feed-loc-1"
	loc["latitude"], loc["longitude"] = 55.6501, 37.7401
	addr := loc["addresses"].([]any)[0].(map[string]any)
	addr["id"] = "feed-loc-1/addr"
	addr["address_1"] = "улица Братиславская, дом 14"
	return doc
}

const feed = "trud-hsds"

func trusted() catalog.Option {
	cfg := match.DefaultConfig()
	cfg.Trust = map[string]int{src: 0, feed: 1}
	return catalog.WithResolution(cfg)
}

func TestResolutionMergesAcrossSources(t *testing.T) {
	t.Parallel()
	db := setup(t).db
	b := testBundle{db: db, store: catalog.NewStore(db.Pool, trusted())}
	b.apply(t, upsert(t, src, mediation("DSZN-000017")))
	chs := b.apply(t, upsert(t, feed, feedDoc("feed-svc-1")))

	orgID := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-12").String()
	locID := catalog.CanonicalID(catalog.EntityLocation, src, "ORG-12/loc/Марьино").String()
	svcID := catalog.CanonicalID(catalog.EntityService, src, "DSZN-000017").String()
	// The same INN, the same point, the same service of the same organization: nothing new,
	// only what the feed adds (the organization's e-mail, the service's point).
	byType := map[string]catalog.Change{}
	for _, c := range chs {
		if c.EntityType != catalog.EntityServiceAtLocation { // the feed's point of the service is its own
			require.NotEqual(t, catalog.ChangeCreated, c.Op, "%s %s", c.EntityType, c.EntityID)
		}
		byType[c.EntityType] = c
	}
	require.Equal(t, orgID, byType[catalog.EntityOrganization].EntityID)
	require.NotContains(t, byType, catalog.EntityService, "the department's fields win every field of the service: it does not change")
	n, err := b.store.Count(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), n[catalog.EntityOrganization])
	require.Equal(t, int64(1), n[catalog.EntityLocation])
	require.Equal(t, int64(1), n[catalog.EntityService])

	// Survivorship: the department's name (more trusted), the feed's e-mail (only it has one),
	// and metadata saying which source gave each field.
	org, err := b.store.GetOrganization(context.Background(), orgID)
	require.NoError(t, err)
	o := decode(t, org)
	require.Equal(t, `ГБУ ТЦСО "Марьино"`, o["name"])
	require.Equal(t, "marino@social.mos.ru", o["email"])
	prov := map[string]string{}
	for _, m := range o["metadata"].([]any) {
		m := m.(map[string]any)
		if m["last_action_type"] == "survivorship" {
			prov[m["field_name"].(string)] = m["updated_by"].(string)
		}
	}
	require.Equal(t, src, prov["name"])
	require.Equal(t, feed, prov["email"])

	svc, err := b.store.GetService(context.Background(), svcID)
	require.NoError(t, err)
	s := decode(t, svc)
	require.Equal(t, orgID, s["organization_id"])
	sals := s["service_at_locations"].([]any)
	require.Len(t, sals, 2, "each source's service point of the one service")
	for _, sal := range sals {
		require.Equal(t, locID, sal.(map[string]any)["location_id"])
	}

	resolved, err := b.store.ResolvedIDs(context.Background())
	require.NoError(t, err)
	require.Equal(t, orgID, resolved["organization/"+feed+"/feed-org-1"])
	require.Equal(t, locID, resolved["location/"+feed+"/feed-loc-1"])
	require.Equal(t, svcID, resolved["service/"+feed+"/feed-svc-1"])
}

func TestResolutionKeepsDifferentINNsApart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, upsert(t, src, mediation("DSZN-000017")))
	doc := feedDoc("feed-svc-1")
	doc["organization"].(map[string]any)["organization_identifiers"].([]any)[0].(map[string]any)["identifier"] = "7700000001"
	b.apply(t, upsert(t, feed, doc))
	n, err := b.store.Count(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(2), n[catalog.EntityOrganization])
	require.Equal(t, int64(2), n[catalog.EntityService], "services of different organizations never merge")
}

func TestResolutionDeleteKeepsWhatOthersBack(t *testing.T) {
	t.Parallel()
	db := setup(t).db
	b := testBundle{db: db, store: catalog.NewStore(db.Pool, trusted())}
	b.apply(t, upsert(t, src, mediation("DSZN-000017")))
	b.apply(t, upsert(t, feed, feedDoc("feed-svc-1")))
	svcID := catalog.CanonicalID(catalog.EntityService, src, "DSZN-000017").String()

	// The department withdraws its record: the feed still backs the service, now as it says.
	chs := b.apply(t, del(src, "DSZN-000017"))
	require.Contains(t, ops(chs), "service:updated:2")
	svc, err := b.store.GetService(context.Background(), svcID)
	require.NoError(t, err)
	s := decode(t, svc)
	require.Equal(t, "Медиация для семей", s["description"])
	require.Len(t, s["service_at_locations"].([]any), 1)

	// The feed withdraws it too: nothing backs it any more.
	chs = b.apply(t, del(feed, "feed-svc-1"))
	require.Contains(t, ops(chs), "service:deleted:3")
	_, err = b.store.GetService(context.Background(), svcID)
	require.ErrorIs(t, err, catalog.ErrNotFound)

	// A replay of both deletes and of nothing else changes nothing.
	require.Empty(t, b.apply(t, del(src, "DSZN-000017"), del(feed, "feed-svc-1")))
}

func TestResolutionReplayChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	recs := []catalog.Record{upsert(t, src, mediation("DSZN-000017")), upsert(t, feed, feedDoc("feed-svc-1"))}
	b.apply(t, recs...)
	ctx := context.Background()
	before, err := b.store.Digest(ctx)
	require.NoError(t, err)
	ids, err := b.store.ResolvedIDs(ctx)
	require.NoError(t, err)
	require.Empty(t, b.apply(t, recs...))
	require.Empty(t, b.apply(t, recs[1], recs[0]))
	after, err := b.store.Digest(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	again, err := b.store.ResolvedIDs(ctx)
	require.NoError(t, err)
	require.Equal(t, ids, again)
}

// Two resolvers, each in its own transaction, see the same new organization at once (two
// sources' records in different partitions): one canonical organization comes out.
func TestResolutionConcurrentResolversCreateOneOrganization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for round := range 5 {
		dept := mediation("DSZN-R" + string(rune('0'+round)))
		org := dept["organization"].(map[string]any)
		org["id"] = "ORG-R" + string(rune('0'+round))
		inn := innOf(org["id"].(string))
		org["organization_identifiers"].([]any)[0].(map[string]any)["identifier"] = inn
		other := feedDoc("feed-R" + string(rune('0'+round)))
		oorg := other["organization"].(map[string]any)
		oorg["id"] = "feed-org-R" + string(rune('0'+round))
		oorg["organization_identifiers"].([]any)[0].(map[string]any)["identifier"] = inn

		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, rec := range []catalog.Record{upsert(t, src, dept), upsert(t, feed, other)} {
			wg.Go(func() {
				<-start
				tx, err := b.db.Pool.Begin(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				defer func() { _ = tx.Rollback(ctx) }()
				if _, err = b.store.Apply(ctx, tx, []catalog.Record{rec}); err != nil {
					errs[i] = err
					return
				}
				errs[i] = tx.Commit(ctx)
			})
		}
		close(start)
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		resolved, err := b.store.ResolvedIDs(ctx)
		require.NoError(t, err)
		require.Equal(t, resolved["organization/"+src+"/"+org["id"].(string)], resolved["organization/"+feed+"/"+oorg["id"].(string)])
	}
	n, err := b.store.Count(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), n[catalog.EntityOrganization])
}

func TestMatchFeatures(t *testing.T) {
	t.Parallel()
	cfg := match.DefaultConfig()
	require.NoError(t, cfg.Validate())
	org := func(source, name, inn, phone, email, site string) match.Features {
		f := map[string]any{"name": name, "email": email, "website": site}
		if inn != "" {
			f["organization_identifiers"] = []any{map[string]any{"identifier_scheme": "INN", "identifier": inn}}
		}
		if phone != "" {
			f["phones"] = []any{map[string]any{"number": phone}}
		}
		return match.OrganizationFeatures(source, f)
	}
	a := org("a", `ГБУ ТЦСО "Марьино"`, "7723012345", "", "", "")
	b := org("b", "Государственное бюджетное учреждение ТЦСО Марьино", "7723012345", "", "", "")
	require.Equal(t, []string{"inn"}, cfg.Score(&a, &b).Matched)
	c := org("b", `ГБУ ТЦСО "Марьино"`, "7723099999", "", "", "")
	require.Zero(t, cfg.Score(&a, &c).Score, "two INNs are two legal entities")

	// Without identifiers: names (legal forms, transliteration, acronyms), phones, e-mail, site.
	x := org("a", "Московская служба психологической помощи населению", "", "+7 (495) 123-45-67", "", "https://msppn.mos.ru")
	y := org("b", "ГБУ МСППН", "", "8 495 1234567", "", "http://www.msppn.mos.ru/about")
	r := cfg.Score(&x, &y)
	require.Contains(t, r.Matched, "phone")
	require.Contains(t, r.Matched, "website")
	require.GreaterOrEqual(t, r.Score, cfg.OrganizationThresholds.Merge)
	lat := org("a", "Moya rabota", "", "", "info@czn.ru", "")
	cyr := org("b", "Моя работа", "", "", "INFO@czn.ru", "")
	r = cfg.Score(&lat, &cyr)
	require.Equal(t, []string{"name", "email"}, r.Matched)

	// Blocking: the keys find candidates by identifier, phone, e-mail, site and name tokens.
	require.Contains(t, x.Keys(), "tel:4951234567")
	require.Contains(t, x.Keys(), "web:msppn.mos.ru")
	require.Contains(t, x.Keys(), "nm:msppn")
	require.Contains(t, a.Keys(), "inn:7723012345")

	// Service points: distance, address spelling, district.
	loc := func(addr, district string, lat, lon float64) match.Features {
		return match.LocationFeatures("s", "org", map[string]any{"name": "ТЦСО Марьино", "latitude": lat, "longitude": lon,
			"addresses": []any{map[string]any{"address_1": addr, "district": district}}})
	}
	p := loc("ул. Братиславская, д. 14, корп. 2", "Марьино", 55.65, 37.74)
	q := loc("улица Братиславская, дом 14, корпус 2", "", 55.6501, 37.7401)
	r = cfg.Score(&p, &q)
	require.GreaterOrEqual(t, r.Score, cfg.LocationThresholds.Merge, "%v", r)
	far := loc("ул. Братиславская, д. 16", "Люблино", 55.68, 37.76)
	require.Less(t, cfg.Score(&p, &far).Score, cfg.LocationThresholds.Review)
	for _, k := range p.Keys() {
		if strings.HasPrefix(k, "geo:") {
			require.Contains(t, q.Probes(), k, "a point's own cell is among its neighbour's probes")
		}
	}
	require.InDelta(t, 13.0, match.Meters(55.65, 37.74, 55.6501, 37.7401), 1)
}

// TestSurvivorshipFollowsChangesNotMentions: two equally trusted sources spell one organization
// their own way. The canonical organization takes the fields of the member that changed last; a
// record that only names the organization again, as every service record does, changes nothing,
// so the organization does not flip between the spellings with every batch.
func TestSurvivorshipFollowsChangesNotMentions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const other = "other-csv"
	record := func(source, id, orgName, email string) catalog.Record {
		doc := serviceDoc(id, "Услуга "+id, "Описание "+id, "ORG-12", orgName, "family-mediation")
		if email != "" {
			doc["organization"].(map[string]any)["email"] = email
		}
		return upsert(t, source, doc)
	}
	orgChanges := func(chs []catalog.Change) []catalog.Change {
		var out []catalog.Change
		for _, c := range chs {
			if c.EntityType == catalog.EntityOrganization {
				out = append(out, c)
			}
		}
		return out
	}
	orgName := func() string {
		t.Helper()
		var name string
		require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT name FROM catalog_organizations`).Scan(&name))
		return name
	}
	b.apply(t, record(src, "DSZN-1", `ГБУ ТЦСО "Марьино"`, ""))
	b.apply(t, record(other, "OTHER-1", `ГБУ ТЦСО «МАРЬИНО»`, ""))
	require.Equal(t, `ГБУ ТЦСО «МАРЬИНО»`, orgName(), "the member that changed last")

	for i := 2; i <= 3; i++ {
		chs := b.apply(t, record(src, fmt.Sprintf("DSZN-%d", i), `ГБУ ТЦСО "Марьино"`, ""))
		require.Empty(t, orgChanges(chs), "the department only named the organization again")
		chs = b.apply(t, record(other, fmt.Sprintf("OTHER-%d", i), `ГБУ ТЦСО «МАРЬИНО»`, ""))
		require.Empty(t, orgChanges(chs))
	}
	require.Equal(t, `ГБУ ТЦСО «МАРЬИНО»`, orgName())

	// The department changes its organization's data: now it changed last.
	chs := b.apply(t, record(src, "DSZN-4", `ГБУ ТЦСО "Марьино"`, "marino@mos.ru"))
	require.Len(t, orgChanges(chs), 1)
	require.Contains(t, orgChanges(chs)[0].ChangedFields, "name")
	require.Equal(t, `ГБУ ТЦСО "Марьино"`, orgName())
}
