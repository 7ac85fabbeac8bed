package match

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Result is the verdict on a pair: the score (0..1) and the features that made it, for the review
// queue and the metadata ("inn", "phone", "name:0.83", ...).
type Result struct {
	Score   float64  `json:"score"`
	Matched []string `json:"matched"`
	// Key is set when a deterministic key decided (an identifier in common, or two different
	// identifiers of one scheme, which keep the pair apart whatever else agrees).
	Key string `json:"key,omitempty"`
}

// Score compares two records of one entity type.
func (c Config) Score(a, b *Features) Result { return c.score(a, b, true) }

// Points is Score's score alone, without naming what matched: what ranking many candidates needs,
// at a fraction of the cost (no strings built). It equals Score(a, b).Score exactly.
func (c Config) Points(a, b *Features) float64 { return c.score(a, b, false).Score }

func (c Config) score(a, b *Features, explain bool) Result {
	switch a.Type {
	case TypeOrganization:
		return c.scoreOrganization(a, b, explain)
	case TypeLocation:
		return c.scoreLocation(a, b, explain)
	default:
		return c.scoreService(a, b, explain)
	}
}

func (c Config) scoreOrganization(a, b *Features, explain bool) Result {
	// Deterministic first: an INN or OGRN is one legal entity; two different ones are two.
	for _, scheme := range []string{"inn:", "ogrn:", "ogrnip:"} {
		x, y := withPrefix(a.IDs, scheme), withPrefix(b.IDs, scheme)
		if x == "" || y == "" {
			continue
		}
		if x == y {
			return Result{Score: 1, Matched: []string{strings.TrimSuffix(scheme, ":")}, Key: x}
		}
		return Result{Score: 0, Matched: []string{strings.TrimSuffix(scheme, ":") + " differs"}, Key: x + "≠" + y}
	}
	t := tally{explain: explain}
	w := c.Organization
	s := Similarity(a.Name, b.Name)
	if acronymOf(a, b) || acronymOf(b, a) {
		// One name is the other's initials, as a department's own systems write it.
		s = math.Max(s, 0.9)
	}
	if s > 0 {
		t.add(w.Name*s, "name", s)
	}
	if shares(a.Phones, b.Phones) {
		t.add(w.Phone, "phone", 1)
	}
	if shares(a.Emails, b.Emails) {
		t.add(w.Email, "email", 1)
	}
	if shares(a.Domains, b.Domains) {
		t.add(w.Domain, "website", 1)
	}
	return t.result()
}

// acronymOf says whether a's name is b's acronym (with at most a legal form beside it).
func acronymOf(a, b *Features) bool {
	if b.Acronym == "" {
		return false
	}
	rest := 0
	found := false
	for _, t := range a.Name {
		switch {
		case t == b.Acronym:
			found = true
		case !stopTokens[t]:
			rest++
		}
	}
	return found && rest == 0
}

func (c Config) scoreLocation(a, b *Features, explain bool) Result {
	t := tally{explain: explain}
	w := c.Location
	if a.HasGeo && b.HasGeo {
		d := Meters(a.Lat, a.Lon, b.Lat, b.Lon)
		closeness := 1 - (d-w.NearMeters)/(w.FarMeters-w.NearMeters)
		closeness = math.Max(0, math.Min(1, closeness))
		if closeness > 0 {
			t.add(w.Distance*closeness, "distance", closeness)
		}
	}
	if s := Similarity(a.Address, b.Address); s > 0 && sameNumbers(a.Address, b.Address) {
		t.add(w.Address*s, "address", s)
	}
	if s := Similarity(a.Name, b.Name); s > 0 {
		t.add(w.Name*s, "name", s)
	}
	if a.Org != "" && a.Org == b.Org {
		t.add(w.Organization, "organization", 1)
	}
	if shares(a.Phones, b.Phones) {
		t.add(w.Phone, "phone", 1)
	}
	if a.District != "" && b.District != "" && a.District != b.District {
		t.score -= w.OtherDistrict
		t.note("district differs")
	}
	return t.result()
}

func (c Config) scoreService(a, b *Features, explain bool) Result {
	t := tally{explain: explain}
	if a.Org == "" || a.Org != b.Org {
		t.note("organization differs")
		return t.result()
	}
	w := c.Service
	if s := Similarity(a.Name, b.Name); s > 0 {
		t.add(w.Name*s, "name", s)
	}
	if shares(a.Locations, b.Locations) {
		t.add(w.Location, "location", 1)
	}
	if shares(a.Terms, b.Terms) {
		t.add(w.Term, "taxonomy_term", 1)
	}
	if shares(a.Phones, b.Phones) {
		t.add(w.Phone, "phone", 1)
	}
	return t.result()
}

// tally adds up a pair's score and, when explain is set (Score, not Points), names what made it.
type tally struct {
	score   float64
	matched []string
	explain bool
}

// add adds weight w for a feature that matched to degree s (1: fully).
func (t *tally) add(w float64, feature string, s float64) {
	t.score += w
	if t.explain && s < 1 {
		feature += ":" + strconv.FormatFloat(s, 'f', 2, 64)
	}
	t.note(feature)
}

// note names a feature among what made the score.
func (t *tally) note(feature string) {
	if t.explain {
		t.matched = append(t.matched, feature)
	}
}

func (t *tally) result() Result { return Result{Score: clamp(t.score), Matched: t.matched} }

func clamp(s float64) float64 { return math.Max(0, math.Min(1, math.Round(s*1000)/1000)) }

// Similarity is the Dice coefficient of two sorted token sets, where tokens that differ by one
// edit (a typo, a transliteration variant) count as half a match.
func Similarity(a, b []string) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	common := 0.0
	// Names and addresses have a handful of tokens: the flags live on the stack (scoring runs
	// for every candidate of every new member).
	var usedBuf, foundBuf [32]bool
	used, found := usedBuf[:], foundBuf[:]
	if len(b) > len(used) {
		used = make([]bool, len(b))
	}
	if len(a) > len(found) {
		found = make([]bool, len(a))
	}
	for ia, x := range a {
		i, ok := slices.BinarySearch(b, x)
		found[ia] = ok
		if ok && !used[i] {
			used[i] = true
			common++
		}
	}
	for ia, x := range a {
		if found[ia] {
			continue
		}
		for i, y := range b {
			if !used[i] && len(x) > 3 && oneEdit(x, y) {
				used[i] = true
				common += 0.5
				break
			}
		}
	}
	return 2 * common / float64(len(a)+len(b))
}

// oneEdit says whether x becomes y by one insertion, deletion or substitution.
func oneEdit(x, y string) bool {
	if d := len(x) - len(y); d > 1 || d < -1 {
		return false
	}
	i := 0
	for i < len(x) && i < len(y) && x[i] == y[i] {
		i++
	}
	j, k := len(x), len(y)
	for j > i && k > i && x[j-1] == y[k-1] {
		j--
		k--
	}
	return j-i <= 1 && k-i <= 1
}

// sameNumbers says whether two addresses name the same house: their numeric tokens agree (when
// both have some).
func sameNumbers(a, b []string) bool {
	var x, y []string
	for _, t := range a {
		if isNumber(t) {
			x = append(x, t)
		}
	}
	for _, t := range b {
		if isNumber(t) {
			y = append(y, t)
		}
	}
	if len(x) == 0 || len(y) == 0 {
		return true
	}
	return slices.Equal(x, y)
}

// Meters is the distance between two points on the Earth (haversine).
func Meters(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371000.0
	rad := math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Asin(math.Sqrt(h))
}

func withPrefix(ids []string, prefix string) string {
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			return id
		}
	}
	return ""
}

// shares says whether two sorted sets have an element in common.
func shares(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); ok {
			return true
		}
	}
	return false
}
