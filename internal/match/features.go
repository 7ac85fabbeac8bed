package match

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"socialhub/internal/normalize"
)

// Entity types matched, as the catalog names them.
const (
	TypeOrganization = "organization"
	TypeLocation     = "location"
	TypeService      = "service"
)

// Features are what a record offers for matching, normalized so that equal things compare equal
// however each source wrote them. They are stored with the record (JSON) so that candidates need
// no re-parsing.
type Features struct {
	Type     string   `json:"type"`
	Source   string   `json:"source"`
	IDs      []string `json:"ids,omitempty"`    // "inn:…", "ogrn:…"
	Phones   []string `json:"phones,omitempty"` // ten national digits
	Emails   []string `json:"emails,omitempty"`
	Domains  []string `json:"domains,omitempty"`
	Name     []string `json:"name,omitempty"`     // name tokens, transliterated to Latin, sorted
	Acronym  string   `json:"acronym,omitempty"`  // first letters of the name's words («мсппн»)
	Address  []string `json:"address,omitempty"`  // address tokens, abbreviated, transliterated, sorted
	District string   `json:"district,omitempty"` // lower case
	Lat      float64  `json:"lat,omitempty"`
	Lon      float64  `json:"lon,omitempty"`
	HasGeo   bool     `json:"geo,omitempty"`
	// Org is the canonical organization of a service, or of the record that listed a location.
	Org string `json:"org,omitempty"`
	// Locations are a service's canonical locations; Terms its taxonomy term ids.
	Locations []string `json:"locations,omitempty"`
	Terms     []string `json:"terms,omitempty"`
}

// Equal says whether two records offer the same features (an absent list equals an empty one,
// as they do once stored).
func (f *Features) Equal(g *Features) bool {
	return f.Type == g.Type && f.Source == g.Source && slices.Equal(f.IDs, g.IDs) && slices.Equal(f.Phones, g.Phones) &&
		slices.Equal(f.Emails, g.Emails) && slices.Equal(f.Domains, g.Domains) && slices.Equal(f.Name, g.Name) &&
		f.Acronym == g.Acronym && slices.Equal(f.Address, g.Address) && f.District == g.District &&
		f.Lat == g.Lat && f.Lon == g.Lon && f.HasGeo == g.HasGeo && f.Org == g.Org &&
		slices.Equal(f.Locations, g.Locations) && slices.Equal(f.Terms, g.Terms)
}

// OrganizationFeatures reads an organization's canonical fields.
func OrganizationFeatures(source string, f map[string]any) Features {
	out := Features{Type: TypeOrganization, Source: source}
	for _, it := range objects(f["organization_identifiers"]) {
		scheme := strings.ToLower(str(it["identifier_scheme"]))
		id := digits(str(it["identifier"]))
		if id == "" {
			continue
		}
		switch scheme {
		case "inn", "ogrn", "ogrnip":
			out.IDs = appendUnique(out.IDs, scheme+":"+id)
		}
	}
	out.Phones = phones(f)
	out.Emails = emails(str(f["email"]))
	out.Domains = domains(str(f["website"]))
	out.Name = NameTokens(str(f["name"]))
	out.Acronym = Acronym(str(f["name"]))
	return out
}

// Acronym returns the first letters of a name's words, legal forms and stop words left out,
// transliterated: «Московская служба психологической помощи населению» gives «msppn», which is
// how the service's own systems name it. Names of fewer than three such words have none.
func Acronym(name string) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(normalize.MatchKey(name)) {
		t := Translit(w)
		if stopTokens[t] || isNumber(t) || legalAbbrev[w] {
			continue
		}
		r := []rune(w)[0]
		b.WriteString(Translit(string(r)))
		n++
	}
	if n < 3 {
		return ""
	}
	return b.String()
}

// legalAbbrev are the abbreviated legal forms normalize.MatchKey writes.
var legalAbbrev = map[string]bool{
	"гбу": true, "гку": true, "гау": true, "гуп": true, "гбоу": true, "гбуз": true, "гбусо": true, "гбук": true,
	"фгбу": true, "ано": true, "нко": true, "нп": true, "бф": true, "боо": true, "роо": true, "моо": true, "ооо": true,
	"оо": true, "пао": true, "ао": true, "чу": true, "ип": true, "тцсо": true, "цсо": true, "мфц": true,
}

// LocationFeatures reads a location's canonical fields; org is the canonical organization of the
// record that lists it ("" when unknown).
func LocationFeatures(source, org string, f map[string]any) Features {
	out := Features{Type: TypeLocation, Source: source, Org: org}
	out.Name = NameTokens(str(f["name"]))
	out.Phones = phones(f)
	lat, okLat := f["latitude"].(float64)
	lon, okLon := f["longitude"].(float64)
	if okLat && okLon && (lat != 0 || lon != 0) {
		out.Lat, out.Lon, out.HasGeo = lat, lon, true
	}
	for _, a := range objects(f["addresses"]) {
		out.Address = AddressTokens(str(a["address_1"]))
		out.District = strings.ToLower(strings.TrimSpace(str(a["district"])))
		break // the first address is the point's own
	}
	return out
}

// ServiceFeatures reads a service's canonical fields; org and locations are canonical ids.
func ServiceFeatures(source, org string, locations []string, f map[string]any) Features {
	out := Features{Type: TypeService, Source: source, Org: org, Locations: slices.Clone(locations)}
	slices.Sort(out.Locations)
	out.Name = NameTokens(str(f["name"]))
	out.Phones = phones(f)
	out.Emails = emails(str(f["email"]))
	for _, a := range objects(f["attributes"]) {
		if t := str(a["taxonomy_term_id"]); t != "" {
			out.Terms = appendUnique(out.Terms, t)
		}
	}
	slices.Sort(out.Terms)
	return out
}

// geoCell is the side of a blocking grid cell in degrees (about 330 m of latitude in Moscow):
// a point's candidates are in its cell and the eight around it, so any two points closer than a
// cell are always compared.
const geoCell = 0.003

func cellOf(lat, lon float64) (int, int) {
	return int(math.Floor(lat / geoCell)), int(math.Floor(lon / geoCell))
}

// Keys returns the blocking keys a record is stored under. Candidates of a record are the
// records stored under one of its Probes.
func (f *Features) Keys() []string {
	var out []string
	switch f.Type {
	case TypeOrganization:
		out = append(out, f.IDs...)
		for _, p := range f.Phones {
			out = append(out, "tel:"+p)
		}
		for _, e := range f.Emails {
			out = append(out, "mail:"+e)
		}
		for _, d := range f.Domains {
			out = append(out, "web:"+d)
		}
		for _, t := range distinctive(f.Name, 2) {
			out = append(out, "nm:"+t)
		}
		if f.Acronym != "" {
			out = append(out, "nm:"+f.Acronym)
		}
	case TypeLocation:
		if f.HasGeo {
			i, j := cellOf(f.Lat, f.Lon)
			out = append(out, "geo:"+strconv.Itoa(i)+":"+strconv.Itoa(j))
		}
		for _, t := range distinctive(f.Address, 1) {
			out = append(out, "adr:"+f.District+"|"+t)
		}
	case TypeService:
		// An organization may run thousands of services: its id alone would make every one of
		// them a candidate. With a name token the block stays small.
		if f.Org != "" {
			for _, t := range distinctive(f.Name, 2) {
				out = append(out, "svc:"+f.Org+"|"+t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Probes returns the keys to look candidates up by: Keys, with the neighbouring grid cells of a
// located point.
func (f *Features) Probes() []string {
	out := f.Keys()
	if f.Type == TypeLocation && f.HasGeo {
		i, j := cellOf(f.Lat, f.Lon)
		for di := -1; di <= 1; di++ {
			for dj := -1; dj <= 1; dj++ {
				if di != 0 || dj != 0 {
					out = append(out, "geo:"+strconv.Itoa(i+di)+":"+strconv.Itoa(j+dj))
				}
			}
		}
		slices.Sort(out)
	}
	return out
}

// stopTokens are name and address words too common to find anything by: legal forms (already
// abbreviated by normalize.MatchKey) and generic words.
var stopTokens = map[string]bool{}

func init() {
	for _, w := range []string{
		"гбу", "гку", "гау", "гуп", "гбоу", "гбуз", "гбусо", "гбук", "фгбу", "ано", "нко", "нп", "бф", "боо", "роо",
		"моо", "ооо", "оо", "пао", "ао", "чу", "ип", "г", "москвы", "москва", "города", "город", "и", "в", "на", "по",
		"для", "центр", "филиал", "отделение", "ул", "д", "к", "с", "стр", "пр", "пер", "ш", "б", "пл", "наб",
		"офис", "помещение", "пом", "кв", "№",
	} {
		stopTokens[Translit(w)] = true
	}
}

// distinctive returns up to n tokens that best tell a name apart: the longest non-stop ones.
func distinctive(tokens []string, n int) []string {
	var c []string
	for _, t := range tokens {
		if !stopTokens[t] && len(t) > 2 && !isNumber(t) {
			c = append(c, t)
		}
	}
	slices.SortStableFunc(c, func(a, b string) int { return len(b) - len(a) })
	return c[:min(n, len(c))]
}

// NameTokens returns a name's match tokens: normalize.MatchKey's words (legal forms abbreviated),
// transliterated to Latin so that «Моя работа» and «Moya rabota» agree, sorted, without repeats.
func NameTokens(name string) []string {
	key := normalize.MatchKey(name)
	if key == "" {
		return nil
	}
	out := strings.Fields(Translit(key))
	slices.Sort(out)
	return slices.Compact(out)
}

// addressWords abbreviates the words of Russian addresses the way lists write them short.
var addressWords = map[string]string{
	"улица": "ул", "дом": "д", "корпус": "к", "корп": "к", "строение": "с", "стр": "с", "проспект": "пр",
	"пр-т": "пр", "просп": "пр", "переулок": "пер", "шоссе": "ш", "бульвар": "б", "бул": "б", "бр": "б",
	"площадь": "пл", "набережная": "наб", "проезд": "пр-д", "владение": "вл", "влад": "вл",
}

// AddressTokens returns an address's match tokens: lower case, street-type words abbreviated,
// «14к2» split into «14 к 2», the city dropped, transliterated, sorted.
func AddressTokens(addr string) []string {
	var words []string
	var w []rune
	flush := func() {
		if len(w) > 0 {
			words = append(words, string(w))
			w = w[:0]
		}
	}
	prevDigit := false
	for _, r := range strings.ToLower(addr) {
		switch {
		case r == 'ё':
			r = 'е'
			fallthrough
		case unicode.IsLetter(r):
			if prevDigit {
				flush()
			}
			w = append(w, r)
			prevDigit = false
		case unicode.IsDigit(r):
			if len(w) > 0 && !prevDigit {
				flush()
			}
			w = append(w, r)
			prevDigit = true
		default:
			flush()
			prevDigit = false
		}
	}
	flush()
	out := make([]string, 0, len(words))
	for _, w := range words {
		if a, ok := addressWords[w]; ok {
			w = a
		}
		switch w {
		case "г", "москва", "город":
			continue
		}
		out = append(out, Translit(w))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var translit = map[rune]string{
	'а': "a", 'б': "b", 'в': "v", 'г': "g", 'д': "d", 'е': "e", 'ж': "zh", 'з': "z", 'и': "i", 'й': "i",
	'к': "k", 'л': "l", 'м': "m", 'н': "n", 'о': "o", 'п': "p", 'р': "r", 'с': "s", 'т': "t", 'у': "u",
	'ф': "f", 'х': "kh", 'ц': "ts", 'ч': "ch", 'ш': "sh", 'щ': "shch", 'ъ': "", 'ы': "y", 'ь': "",
	'э': "e", 'ю': "iu", 'я': "ia", 'ё': "e",
}

// Translit writes lower-case Cyrillic in Latin letters (a simplified GOST 52535.1: "й" and "и"
// both as "i", so that the common Latin spellings of one name mostly agree) and folds the Latin
// spellings that vary most ("ya"/"ia", "yu"/"iu", "j" for "й") to the same form.
func Translit(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if t, ok := translit[r]; ok {
			b.WriteString(t)
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	out := b.String()
	if strings.ContainsAny(out, "yjx") {
		out = latinFold.Replace(out)
	}
	return out
}

var latinFold = strings.NewReplacer("ya", "ia", "yu", "iu", "yo", "e", "x", "ks", "j", "i", "y", "y")

func objects(v any) []map[string]any {
	items, _ := v.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// phones returns the national significant numbers (last ten digits) of an object's phones.
func phones(f map[string]any) []string {
	var out []string
	for _, p := range objects(f["phones"]) {
		d := digits(str(p["number"]))
		if len(d) >= 10 {
			out = appendUnique(out, d[len(d)-10:])
		}
	}
	slices.Sort(out)
	return out
}

func emails(s string) []string {
	s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, "mailto:")))
	if !strings.Contains(s, "@") {
		return nil
	}
	return []string{s}
}

// domains returns the host of a web site without «www.»; hosts that many organizations share
// (the city portal) are no evidence and are left out.
func domains(site string) []string {
	s := strings.ToLower(strings.TrimSpace(site))
	if s == "" {
		return nil
	}
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimPrefix(s, "www.")
	switch s {
	case "", "mos.ru", "vk.com", "ok.ru", "t.me", "facebook.com", "gosuslugi.ru":
		return nil
	}
	return []string{s}
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
