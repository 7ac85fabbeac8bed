package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// TaxonomyTerm is a term of the city's service taxonomy (an HSDS taxonomy_term).
type TaxonomyTerm struct {
	ID          string `json:"id"`
	Code        string `json:"code"`
	Name        string `json:"name"`
	Description string `json:"description"`
	ParentID    string `json:"parent_id,omitempty"`
	Taxonomy    string `json:"taxonomy"`
	Language    string `json:"language"`
}

type taxonomyIndex struct {
	terms  []TaxonomyTerm
	byID   map[string]int
	byText map[string]int // folded id, code and name
}

var loadTaxonomy = sync.OnceValue(func() taxonomyIndex {
	b, err := files.ReadFile("taxonomy.json")
	if err != nil {
		panic(fmt.Sprintf("schemas: embedded taxonomy.json: %v", err))
	}
	idx := taxonomyIndex{byID: map[string]int{}, byText: map[string]int{}}
	if err := json.Unmarshal(b, &idx.terms); err != nil {
		// The file is embedded and tested: a parse error is a build defect, not a runtime condition.
		panic(fmt.Sprintf("schemas: embedded taxonomy.json: %v", err))
	}
	for i, t := range idx.terms {
		idx.byID[t.ID] = i
		for _, s := range []string{t.ID, t.Code, t.Name} {
			if _, dup := idx.byText[fold(s)]; !dup {
				idx.byText[fold(s)] = i
			}
		}
	}
	return idx
})

// Taxonomy returns the city's taxonomy terms, parents before their children. The slice is a copy.
func Taxonomy() []TaxonomyTerm {
	return append([]TaxonomyTerm(nil), loadTaxonomy().terms...)
}

// TaxonomyTermByID returns the term with exactly this id.
func TaxonomyTermByID(id string) (TaxonomyTerm, bool) {
	idx := loadTaxonomy()
	i, ok := idx.byID[id]
	if !ok {
		return TaxonomyTerm{}, false
	}
	return idx.terms[i], true
}

// LookupTaxonomyTerm finds a term by its id, code or Russian name, ignoring case, surrounding
// spaces and the ё/е difference.
func LookupTaxonomyTerm(s string) (TaxonomyTerm, bool) {
	idx := loadTaxonomy()
	i, ok := idx.byText[fold(s)]
	if !ok {
		return TaxonomyTerm{}, false
	}
	return idx.terms[i], true
}

// fold normalizes text for lookups: trimmed, lower case, ё as е, inner runs of spaces as one.
func fold(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), " "))
	return strings.ReplaceAll(s, "ё", "е")
}
