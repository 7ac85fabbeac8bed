package schemas_test

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/schemas"
)

// TestTaxonomyEnumMatchesSchema fails when attribute.json's enum and taxonomy.json disagree: after
// adding a term, copy the printed list into attribute.json.
func TestTaxonomyEnumMatchesSchema(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(schemas.FS(), "attribute.json")
	require.NoError(t, err)
	var s struct {
		Properties struct {
			TaxonomyTermID struct {
				Enum []string `json:"enum"`
			} `json:"taxonomy_term_id"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	var ids []string
	for _, term := range schemas.Taxonomy() {
		ids = append(ids, term.ID)
	}
	want, err := json.Marshal(ids)
	require.NoError(t, err)
	require.Equal(t, ids, s.Properties.TaxonomyTermID.Enum, "attribute.json taxonomy_term_id enum must be %s", want)
}

func TestTaxonomy(t *testing.T) {
	t.Parallel()
	names := map[string]string{
		"employment":             "Содействие занятости",
		"employment-benefit":     "Пособие по безработице",
		"career-guidance":        "Профориентационное тестирование",
		"retraining":             "Переобучение и повышение квалификации",
		"psychological-help":     "Психологическая помощь",
		"psych-individual":       "Индивидуальная консультация психолога",
		"psych-group":            "Групповые занятия с психологом",
		"legal-help":             "Бесплатная юридическая помощь",
		"family-mediation":       "Семейная медиация",
		"cooling-rooms":          "Комнаты прохлады",
		"pensioners-activities":  "Активное долголетие: занятия для пенсионеров",
		"social-service-centre":  "Территориальный центр социального обслуживания",
		"care-homes":             "Стационарное социальное обслуживание",
		"disability-support":     "Помощь людям с инвалидностью",
		"families-with-children": "Помощь семьям с детьми",
		"homeless-help":          "Помощь людям без определённого места жительства",
	}
	parents := map[string]string{
		"employment-benefit": "employment", "career-guidance": "employment", "retraining": "employment",
		"psych-individual": "psychological-help", "psych-group": "psychological-help",
	}
	terms := schemas.Taxonomy()
	seen := map[string]bool{}
	codes := map[string]bool{}
	for _, term := range terms {
		require.False(t, seen[term.ID], "duplicate id %s", term.ID)
		require.False(t, codes[term.Code], "duplicate code %s", term.Code)
		seen[term.ID], codes[term.Code] = true, true
		require.Equal(t, "socialhub", term.Taxonomy)
		require.Equal(t, "ru", term.Language)
		require.NotEmpty(t, term.Code)
		require.NotEmpty(t, term.Description)
		require.Equal(t, parents[term.ID], term.ParentID, term.ID)
		if term.ParentID != "" {
			require.True(t, seen[term.ParentID], "%s: parent %s must come first", term.ID, term.ParentID)
		}
	}
	for id, name := range names {
		term, ok := schemas.TaxonomyTermByID(id)
		require.True(t, ok, id)
		require.Equal(t, name, term.Name)
	}
	mediation, _ := schemas.TaxonomyTermByID("family-mediation")
	require.Contains(t, mediation.Description, "медиация")
	require.Contains(t, mediation.Description, "медиатор")

	// The result is a copy.
	terms[0].Name = "changed"
	require.NotEqual(t, "changed", schemas.Taxonomy()[0].Name)
}

func TestLookupTaxonomyTerm(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"family-mediation":     "family-mediation",
		"  СЕМЕЙНАЯ МЕДИАЦИЯ ": "family-mediation",
		"04":                   "family-mediation",
		"01.03":                "retraining",
		"помощь людям без определенного места жительства": "homeless-help",
		"Комнаты  прохлады": "cooling-rooms",
	} {
		term, ok := schemas.LookupTaxonomyTerm(in)
		require.True(t, ok, in)
		require.Equal(t, want, term.ID, in)
	}
	for _, in := range []string{"", "unknown-category", "медиация"} {
		_, ok := schemas.LookupTaxonomyTerm(in)
		require.False(t, ok, in)
	}
	_, ok := schemas.TaxonomyTermByID("Family-Mediation")
	require.False(t, ok)
}

func TestDistricts(t *testing.T) {
	t.Parallel()
	okrugs := schemas.Okrugs()
	require.Len(t, okrugs, 12)
	shorts := make([]string, 0, len(okrugs))
	for _, o := range okrugs {
		require.True(t, strings.HasSuffix(o.Name, "административный округ"), o.Name)
		shorts = append(shorts, o.Short)
	}
	require.Equal(t, []string{"ЦАО", "САО", "СВАО", "ВАО", "ЮВАО", "ЮАО", "ЮЗАО", "ЗАО", "СЗАО", "ЗелАО", "НАО", "ТАО"}, shorts)

	perOkrug := map[string]map[string]int{}
	names := map[string]bool{}
	for _, d := range schemas.Districts() {
		require.Contains(t, shorts, d.Okrug, d.Name)
		require.Contains(t, []string{schemas.KindDistrict, schemas.KindSettlement}, d.Kind, d.Name)
		require.False(t, names[d.Name], "duplicate %s", d.Name)
		names[d.Name] = true
		require.NotEmpty(t, d.Variants, d.Name)
		require.NotContains(t, d.Variants, d.Name)
		if perOkrug[d.Okrug] == nil {
			perOkrug[d.Okrug] = map[string]int{}
		}
		perOkrug[d.Okrug][d.Kind]++
	}
	total := map[string]int{}
	for _, kinds := range perOkrug {
		for k, n := range kinds {
			total[k] += n
		}
	}
	require.Equal(t, 125, total[schemas.KindDistrict])
	require.Equal(t, 21, total[schemas.KindSettlement])
	for _, s := range shorts {
		require.NotEmpty(t, perOkrug[s], "okrug %s has no district", s)
	}
	require.Equal(t, map[string]map[string]int{
		"ЦАО": {"district": 10}, "САО": {"district": 16}, "СВАО": {"district": 17}, "ВАО": {"district": 16},
		"ЮВАО": {"district": 12}, "ЮАО": {"district": 16}, "ЮЗАО": {"district": 12}, "ЗАО": {"district": 13},
		"СЗАО": {"district": 8}, "ЗелАО": {"district": 5}, "НАО": {"settlement": 11}, "ТАО": {"settlement": 10},
	}, perOkrug)

	i := slices.IndexFunc(schemas.Districts(), func(d schemas.District) bool { return d.Name == "Орехово-Борисово Южное" })
	require.GreaterOrEqual(t, i, 0)
	d := schemas.Districts()[i]
	require.Equal(t, "ЮАО", d.Okrug)
	require.Subset(t, d.Variants, []string{"р-н Орехово-Борисово Южное", "Орехово-Борисово Юж."})

	// The result is a copy, variants included.
	d.Variants[0] = "changed"
	require.NotEqual(t, "changed", schemas.Districts()[i].Variants[0])
}
