package normalize

import (
	"fmt"
	"strings"
	"sync"
	"unicode"

	"socialhub/schemas"
)

// Place is a Moscow district (район) or settlement (поселение) from schemas/districts.json.
type Place struct {
	District string // the reference name, e.g. «Орехово-Борисово Южное», «Савёловский»
	Okrug    string // its okrug's short name, e.g. «ЮАО»
}

// geoIndex maps folded spellings to the reference values.
type geoIndex struct {
	districts map[string]Place
	okrugs    map[string]string
}

// placePrefixes and placeSuffixes are the words lists put around a district's name; they are
// dropped before the lookup, in their folded form (no dots, lower case, е for ё).
var (
	placePrefixes = []string{
		"внутригородское муниципальное образование", "муниципальный округ", "городской округ",
		"поселение", "поселок", "район", "р-н", "рн", "пос", "го", "мо", "п", "г",
	}
	placeSuffixes = []string{"район", "р-н", "рн", "поселение"}
)

var loadGeoIndex = sync.OnceValue(func() geoIndex {
	idx := geoIndex{districts: map[string]Place{}, okrugs: map[string]string{}}
	for _, d := range schemas.Districts() {
		p := Place{District: d.Name, Okrug: d.Okrug}
		idx.districts[stripPlaceWords(foldPlace(d.Name))] = p
		for _, v := range d.Variants {
			idx.districts[stripPlaceWords(foldPlace(v))] = p
		}
	}
	for _, o := range schemas.Okrugs() {
		idx.okrugs[foldPlace(o.Short)] = o.Short
		full := foldPlace(o.Name) // «южный административный округ»
		idx.okrugs[full] = o.Short
		adj := strings.TrimSuffix(full, " административный округ")
		for _, form := range []string{" ао", " адм округ", " округ", " административный округ"} {
			idx.okrugs[adj+form] = o.Short
		}
		idx.okrugs["г москва "+full] = o.Short
	}
	// Zelenograd is a city of Moscow and its own okrug: lists name the okrug after the city.
	for _, v := range []string{"зеленоград", "г зеленоград", "город зеленоград", "зелао"} {
		idx.okrugs[v] = "ЗелАО"
	}
	return idx
})

// District matches a district or settlement of Moscow written as lists write it — «р-н
// Орехово-Борисово Южное», «район Марьино», «Марьинский район» is not a name and fails, «поселение
// Сосенское», «Савеловский», any case and spacing, е for ё — to the reference list. An unknown
// name is an error wrapping ErrDistrict, never the nearest match.
func District(s string) (Place, error) {
	key := stripPlaceWords(foldPlace(s))
	if key == "" {
		return Place{}, fmt.Errorf("%w: empty", ErrDistrict)
	}
	if p, ok := loadGeoIndex().districts[key]; ok {
		return p, nil
	}
	return Place{}, fmt.Errorf("%w: %q is not a district or settlement of Moscow", ErrDistrict, s)
}

// Okrug matches an administrative okrug of Moscow — «ЮАО», «Южный АО», «Южный административный
// округ», «Зеленоградский АО», «г. Зеленоград» — and returns its short name as the profile stores
// it (ЮАО, ЗелАО). An unknown one is an error wrapping ErrOkrug; «ТиНАО», two okrugs since 2012,
// is refused as ambiguous.
func Okrug(s string) (string, error) {
	key := foldPlace(s)
	if key == "" {
		return "", fmt.Errorf("%w: empty", ErrOkrug)
	}
	if o, ok := loadGeoIndex().okrugs[key]; ok {
		return o, nil
	}
	if key == "тинао" || strings.Contains(key, "троицкий и новомосковский") {
		return "", fmt.Errorf("%w: %q names two okrugs (ТАО and НАО)", ErrOkrug, s)
	}
	return "", fmt.Errorf("%w: %q is not an okrug of Moscow", ErrOkrug, s)
}

// foldPlace lower-cases, spells ё as е, drops dots, commas and quotes, puts dashes without blanks
// around them and collapses blanks, so spellings of one name meet.
func foldPlace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r == 'ё' || r == 'Ё':
			r = 'е'
		case isDash(r):
			r = '-'
		case r == '.' || r == ',' || r == '"' || r == '«' || r == '»' || r == '\u00ad':
			// «р-н.Марьино» and «р-н Марьино» meet; a soft hyphen is nothing.
			space = space || r != '\u00ad'
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if r == '-' {
			space = false
			b.WriteRune('-')
			continue
		}
		if space && b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// stripPlaceWords drops the words around a folded district's name: «р-н марьино» → «марьино».
func stripPlaceWords(s string) string {
	for changed := true; changed; {
		changed = false
		for _, p := range placePrefixes {
			if strings.HasPrefix(s, p+" ") {
				s, changed = s[len(p)+1:], true
			}
		}
		for _, p := range placeSuffixes {
			if strings.HasSuffix(s, " "+p) {
				s, changed = s[:len(s)-len(p)-1], true
			}
		}
	}
	return s
}
