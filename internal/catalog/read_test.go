package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/catalog"
)

// seed applies a small catalog: two organizations, five services.
func seed(t *testing.T, b testBundle) {
	t.Helper()
	b.apply(t,
		upsert(t, src, mediation("DSZN-1")),
		upsert(t, src, serviceDoc("DSZN-2", "Психологическая консультация", "Индивидуальная помощь психолога",
			"ORG-12", `ГБУ ТЦСО "Марьино"`, "psych-individual")),
		upsert(t, src, serviceDoc("DSZN-3", "Комната обогрева", "Обогрев и горячее питание зимой",
			"ORG-13", "ГБУ ЦСА «Люблино»", "cooling-rooms")),
		upsert(t, src, serviceDoc("DSZN-4", "Ярмарка вакансий", "Подбор работы",
			"ORG-13", "ГБУ ЦСА «Люблино»", "employment")),
		upsert(t, src, serviceDoc("DSZN-5", "Юридическая консультация", "Бесплатная помощь юриста",
			"ORG-13", "ГБУ ЦСА «Люблино»", "legal-help")),
	)
}

func names(t *testing.T, p catalog.Page) []string {
	t.Helper()
	out := make([]string, len(p.Contents))
	for i, c := range p.Contents {
		out[i] = decode(t, c)["name"].(string)
	}
	return out
}

func TestListServices(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seed(t, b)
	ctx := context.Background()
	list := func(f catalog.ServiceFilter) catalog.Page {
		p, err := b.store.ListServices(ctx, f)
		require.NoError(t, err)
		return p
	}

	p := list(catalog.ServiceFilter{})
	require.Equal(t, []string{"Комната обогрева", "Психологическая консультация", "Семейная медиация",
		"Юридическая консультация", "Ярмарка вакансий"}, names(t, p))
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 1, PageNumber: 1, Size: 5, FirstPage: true, LastPage: true,
		Contents: p.Contents}, p)
	item := decode(t, p.Contents[2])
	require.Equal(t, `ГБУ ТЦСО "Марьино"`, item["organization"].(map[string]any)["name"])
	require.NotContains(t, item, "phones", "list items have one-to-one fields only")
	require.NotContains(t, item["organization"], "organization_identifiers")
	_, err := time.Parse(time.RFC3339, item["last_modified"].(string))
	require.NoError(t, err)

	// Full text, Russian stemming: «медиация» finds «медиации» and the term name.
	require.Equal(t, []string{"Семейная медиация"}, names(t, list(catalog.ServiceFilter{Search: "медиации"})))
	require.Equal(t, []string{"Семейная медиация"}, names(t, list(catalog.ServiceFilter{Search: "медиация"})))
	require.Equal(t, []string{"Психологическая консультация", "Юридическая консультация"},
		names(t, list(catalog.ServiceFilter{Search: "консультации"})))
	require.Equal(t, []string{"Ярмарка вакансий"}, names(t, list(catalog.ServiceFilter{Search: "занятости"})), "taxonomy term name")
	require.Equal(t, []string{"Комната обогрева", "Юридическая консультация", "Ярмарка вакансий"},
		names(t, list(catalog.ServiceFilter{Search: "Люблино"})), "organization name")
	require.Empty(t, list(catalog.ServiceFilter{Search: "космонавтика"}).Contents)

	// Filters are cumulative.
	org13 := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-13").String()
	require.Equal(t, []string{"Юридическая консультация"}, names(t, list(catalog.ServiceFilter{TaxonomyTermID: "legal-help"})))
	require.Len(t, list(catalog.ServiceFilter{OrganizationID: org13}).Contents, 3)
	require.Equal(t, []string{"Юридическая консультация"},
		names(t, list(catalog.ServiceFilter{OrganizationID: org13, Search: "консультация"})))
	require.Empty(t, list(catalog.ServiceFilter{OrganizationID: org13, TaxonomyTermID: "family-mediation"}).Contents)
	require.Empty(t, list(catalog.ServiceFilter{OrganizationID: "not-a-uuid"}).Contents)
	require.Len(t, list(catalog.ServiceFilter{ModifiedAfter: time.Now().Add(-time.Hour)}).Contents, 5)
	require.Empty(t, list(catalog.ServiceFilter{ModifiedAfter: time.Now().Add(time.Hour)}).Contents)
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seed(t, b)
	ctx := context.Background()
	page := func(n, per int) catalog.Page {
		p, err := b.store.ListServices(ctx, catalog.ServiceFilter{Page: n, PerPage: per})
		require.NoError(t, err)
		p.Contents = nil
		return p
	}
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 3, PageNumber: 1, Size: 2, FirstPage: true}, page(1, 2))
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 3, PageNumber: 2, Size: 2}, page(2, 2))
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 3, PageNumber: 3, Size: 1, LastPage: true}, page(3, 2))
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 3, PageNumber: 4, LastPage: true, Empty: true}, page(4, 2))
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 1, PageNumber: 1, Size: 5, FirstPage: true, LastPage: true}, page(0, 0), "defaults")
	require.Equal(t, catalog.Page{TotalItems: 5, TotalPages: 1, PageNumber: 1, Size: 5, FirstPage: true, LastPage: true}, page(1, 5000), "capped")

	// Pages are stable and disjoint.
	var all []string
	for n := 1; n <= 3; n++ {
		p, err := b.store.ListServices(ctx, catalog.ServiceFilter{Page: n, PerPage: 2})
		require.NoError(t, err)
		all = append(all, names(t, p)...)
	}
	require.Len(t, all, 5)
	require.ElementsMatch(t, all, []string{"Комната обогрева", "Психологическая консультация", "Семейная медиация",
		"Юридическая консультация", "Ярмарка вакансий"})
	require.IsNonDecreasing(t, all)

	empty := setup(t)
	p, err := empty.store.ListOrganizations(ctx, catalog.OrganizationFilter{})
	require.NoError(t, err)
	require.Equal(t, catalog.Page{PageNumber: 1, FirstPage: true, LastPage: true, Empty: true, Contents: p.Contents}, p)
	require.NotNil(t, p.Contents)
}

func TestGetService(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seed(t, b)
	ctx := context.Background()
	id := catalog.CanonicalID(catalog.EntityService, src, "DSZN-1").String()
	raw, err := b.store.GetService(ctx, id)
	require.NoError(t, err)
	svc := decode(t, raw)
	require.Equal(t, id, svc["id"])
	require.Equal(t, `ГБУ ТЦСО "Марьино"`, svc["organization"].(map[string]any)["name"])
	require.Len(t, svc["phones"], 1)
	require.Len(t, svc["schedules"], 1)
	require.Equal(t, "family-mediation", svc["attributes"].([]any)[0].(map[string]any)["taxonomy_term"].(map[string]any)["id"])
	sal := svc["service_at_locations"].([]any)[0].(map[string]any)
	loc := sal["location"].(map[string]any)
	require.Equal(t, loc["id"], sal["location_id"])
	require.Equal(t, "ул. Братиславская, д. 14", loc["addresses"].([]any)[0].(map[string]any)["address_1"])
	require.Len(t, svc["metadata"], 1)

	for _, bad := range []string{"not-a-uuid", catalog.CanonicalID(catalog.EntityService, src, "nope").String()} {
		_, err = b.store.GetService(ctx, bad)
		require.ErrorIs(t, err, catalog.ErrNotFound)
		_, err = b.store.GetOrganization(ctx, bad)
		require.ErrorIs(t, err, catalog.ErrNotFound)
	}
}

func TestOrganizations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seed(t, b)
	ctx := context.Background()
	p, err := b.store.ListOrganizations(ctx, catalog.OrganizationFilter{})
	require.NoError(t, err)
	require.Equal(t, []string{"ГБУ ТЦСО \"Марьино\"", "ГБУ ЦСА «Люблино»"}, names(t, p))
	require.NotContains(t, decode(t, p.Contents[0]), "organization_identifiers")
	p, err = b.store.ListOrganizations(ctx, catalog.OrganizationFilter{Search: "Люблино"})
	require.NoError(t, err)
	require.Equal(t, []string{"ГБУ ЦСА «Люблино»"}, names(t, p))

	id := catalog.CanonicalID(catalog.EntityOrganization, src, "ORG-13").String()
	raw, err := b.store.GetOrganization(ctx, id)
	require.NoError(t, err)
	org := decode(t, raw)
	require.Equal(t, id, org["id"])
	require.Len(t, org["services"], 3)
	require.Equal(t, "Комната обогрева", org["services"].([]any)[0].(map[string]any)["name"])
	require.Len(t, org["locations"], 1)
	require.Equal(t, "ИНН", org["organization_identifiers"].([]any)[0].(map[string]any)["identifier_type"])
}

func TestSearchRanksByRelevance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// By name, «Консультация психолога» comes first; it only matches «медиация» through the name of
	// its organization, so the service that is mediation itself must come first.
	b.apply(t,
		upsert(t, src, serviceDoc("R-1", "Консультация психолога", "Помощь в трудной ситуации",
			"ORG-R1", "Центр семейной медиации", "psych-individual")),
		upsert(t, src, serviceDoc("R-2", "Семейная медиация", "Помощь в конфликтах",
			"ORG-R2", `ГБУ ТЦСО "Марьино"`, "family-mediation")),
	)
	p, err := b.store.ListServices(context.Background(), catalog.ServiceFilter{Search: "медиация"})
	require.NoError(t, err)
	require.Equal(t, []string{"Семейная медиация", "Консультация психолога"}, names(t, p))
}
