package schemas

import (
	"encoding/json"
	"fmt"
	"sync"
)

// District kinds.
const (
	KindDistrict   = "district"   // a район of the old okrugs or of Zelenograd
	KindSettlement = "settlement" // a поселение (or городской округ) of НАО and ТАО
)

// Okrug is one of Moscow's twelve administrative okrugs.
type Okrug struct {
	Short string `json:"short"` // e.g. ЮВАО
	Name  string `json:"name"`  // e.g. Юго-Восточный административный округ
}

// District is a district (район) or settlement (поселение) of Moscow.
type District struct {
	Name     string   `json:"name"`
	Okrug    string   `json:"okrug"` // the okrug's short name
	Kind     string   `json:"kind"`  // KindDistrict or KindSettlement
	Variants []string `json:"variants"`
}

type geography struct {
	Okrugs    []Okrug    `json:"okrugs"`
	Districts []District `json:"districts"`
}

var loadGeography = sync.OnceValue(func() geography {
	b, err := files.ReadFile("districts.json")
	if err != nil {
		panic(fmt.Sprintf("schemas: embedded districts.json: %v", err))
	}
	var g geography
	if err := json.Unmarshal(b, &g); err != nil {
		// The file is embedded and tested: a parse error is a build defect, not a runtime condition.
		panic(fmt.Sprintf("schemas: embedded districts.json: %v", err))
	}
	return g
})

// Okrugs returns Moscow's twelve administrative okrugs. The slice is a copy.
func Okrugs() []Okrug {
	return append([]Okrug(nil), loadGeography().Okrugs...)
}

// Districts returns Moscow's 125 districts and 21 settlements, grouped by okrug. The result is a copy.
func Districts() []District {
	src := loadGeography().Districts
	out := make([]District, len(src))
	for i, d := range src {
		d.Variants = append([]string(nil), d.Variants...)
		out[i] = d
	}
	return out
}
