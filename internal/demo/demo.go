package demo

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/charmap"

	"socialhub/schemas"
)

// Defaults applied to zero options.
const (
	DefaultSeed   = 1
	DefaultRows   = 240
	DefaultBroken = 6
)

// Options shape the generated file.
type Options struct {
	Seed   int64 // 0 means DefaultSeed
	Rows   int   // valid rows; 0 means DefaultRows
	Broken int   // broken rows added to the valid ones; 0 means DefaultBroken, negative means none
	// Institutions adds that many generated centres and NGOs (1–3 service points and 2–4
	// categories each) to the city's fixed eighteen institutions and their forty points. Large
	// lists need them to look like a city's: without them every row is one of a few hundred offers,
	// listed again and again. 0 keeps the default list exactly as it was.
	Institutions int
}

// InstitutionsFor is how many institutions a list of rows needs for most rows to be a service
// of its own (about one offer per row).
func InstitutionsFor(rows int) int { return rows / 6 }

// Manifest lists the external ids (column «Код») of the rows written, in file order.
type Manifest struct {
	Valid  []string
	Broken []BrokenRow
}

// BrokenRow is a row that fails validation for exactly one reason.
type BrokenRow struct {
	ID    string
	Field string // the profile field path validation reports, e.g. "name"
	Why   string
}

// DepartmentColumns is the header of the department file, in order.
var DepartmentColumns = []string{
	"Код", "Код учреждения", "Учреждение", "ИНН", "ОГРН", "Услуга", "Описание", "Категория",
	"Точка обслуживания", "Адрес", "Район", "Округ", "Индекс", "Широта", "Долгота", "Телефон", "Email",
	"Сайт", "Часы работы",
}

// Column positions in DepartmentColumns.
const (
	colID = iota
	colOrgID
	colOrgName
	colINN
	colOGRN
	colService
	colDescription
	colCategory
	colPoint
	colAddress
	colDistrict
	colOkrug
	colPostalCode
	colLatitude
	colLongitude
	colPhone
	colEmail
	colSite
	colHours
	numColumns
)

// breakages are the ways a row is broken, applied in turn.
var breakages = []struct {
	field, why string
	apply      func(row []string)
}{
	{"name", "empty service name (Услуга)", func(r []string) { r[colService] = "" }},
	{"email", "e-mail is not an address (Email = не-почта)", func(r []string) { r[colEmail] = "не-почта" }},
	{"service_at_locations.0.location.latitude", "latitude out of range (Широта = 155.5)", func(r []string) { r[colLatitude] = "155.5" }},
	{"attributes.0.taxonomy_term_id", "category not in the taxonomy (Категория = unknown-category)", func(r []string) { r[colCategory] = "unknown-category" }},
	{"service_at_locations.0.location.addresses.0.address_1", "empty address (Адрес)", func(r []string) { r[colAddress] = "" }},
	{"url", "website is not an http(s) URL (Сайт = ftp//broken)", func(r []string) { r[colSite] = "ftp//broken" }},
}

// WriteDepartmentCSV writes the department's service-point list as UTF-8 CSV with a ";" delimiter
// and returns what it wrote. The same options give the same bytes.
func WriteDepartmentCSV(w io.Writer, opts Options) (Manifest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Manifest{}, err
	}
	rows, man := generate(opts)
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	if err := cw.Write(DepartmentColumns); err != nil {
		return Manifest{}, fmt.Errorf("error writing header: %w", err)
	}
	if err := cw.WriteAll(rows); err != nil {
		return Manifest{}, fmt.Errorf("error writing rows: %w", err)
	}
	return man, nil
}

// WriteDepartmentCSVWindows1251 writes the same content as WriteDepartmentCSV in Windows-1251,
// the encoding department systems export.
func WriteDepartmentCSVWindows1251(w io.Writer, opts Options) (Manifest, error) {
	return WriteDepartmentCSV(charmap.Windows1251.NewEncoder().Writer(w), opts)
}

func (o Options) withDefaults() (Options, error) {
	if o.Rows < 0 {
		return o, fmt.Errorf("%w: rows must not be negative, got %d", ErrBadOptions, o.Rows)
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Rows == 0 {
		o.Rows = DefaultRows
	}
	switch {
	case o.Broken == 0:
		o.Broken = DefaultBroken
	case o.Broken < 0:
		o.Broken = 0
	}
	return o, nil
}

// gen draws every random choice from one PCG stream with its own bounded draws, so the output
// depends on nothing but the seed.
type gen struct{ r *rand.PCG }

func (g gen) intn(n int) int { return int(g.r.Uint64() % uint64(n)) }

func (g gen) float(lo, hi float64) float64 {
	return lo + (hi-lo)*float64(g.r.Uint64()>>11)/(1<<53)
}

func pick[T any](g gen, xs []T) T { return xs[g.intn(len(xs))] }

type point struct {
	name, address, district, okrug, postal, phone string
	lat, lon                                      float64
}

type org struct {
	id, name, inn, ogrn, email, site string
	categories                       []string
	points                           []point
}

// generate builds the rows: the valid ones (every taxonomy leaf first, family mediation five times),
// shuffled, with the broken ones spread among them.
func generate(o Options) ([][]string, Manifest) {
	g := gen{rand.NewPCG(uint64(o.Seed), 0x50c1a1)}
	orgs := buildOrgs(g, o.Institutions)
	// An offer is a service category at one point: institutions with many points offer more.
	var offers []offer
	byCategory := map[string][]offer{}
	for _, og := range orgs {
		for i := range og.points {
			for _, c := range og.categories {
				o := offer{og, &og.points[i], c}
				offers = append(offers, o)
				byCategory[c] = append(byCategory[c], o)
			}
		}
	}
	var must []string
	for _, t := range schemas.Taxonomy() {
		if isLeaf(t.ID) {
			must = append(must, t.ID)
		}
	}
	must = append(must, "family-mediation", "family-mediation", "family-mediation", "family-mediation")

	valid := make([][]string, 0, o.Rows)
	for i := range o.Rows {
		of := pick(g, offers)
		if i < len(must) {
			of = pick(g, byCategory[must[i]])
		}
		valid = append(valid, makeRow(g, of))
	}
	for i := len(valid) - 1; i > 0; i-- {
		j := g.intn(i + 1)
		valid[i], valid[j] = valid[j], valid[i]
	}

	// Broken rows go to distinct random places among all rows.
	total := o.Rows + o.Broken
	brokenAt := map[int]int{} // row index → breakage number
	for k := range o.Broken {
		at := g.intn(total)
		for {
			if _, taken := brokenAt[at]; !taken {
				break
			}
			at = (at + 1) % total
		}
		brokenAt[at] = k
	}

	rows := make([][]string, 0, total)
	man := Manifest{Valid: make([]string, 0, o.Rows)}
	next := 100 + g.intn(900)
	vi := 0
	for i := range total {
		var row []string
		k, broken := brokenAt[i]
		if broken {
			row = makeRow(g, pick(g, offers))
		} else {
			row = valid[vi]
			vi++
		}
		row[colID] = fmt.Sprintf("DSZN-%06d", next)
		next += 1 + g.intn(4)
		if broken {
			b := breakages[k%len(breakages)]
			b.apply(row)
			man.Broken = append(man.Broken, BrokenRow{ID: row[colID], Field: b.field, Why: b.why})
		} else {
			man.Valid = append(man.Valid, row[colID])
		}
		rows = append(rows, row)
	}
	return rows, man
}

func isLeaf(id string) bool {
	for _, t := range schemas.Taxonomy() {
		if t.ParentID == id {
			return false
		}
	}
	return true
}

type offer struct {
	org      *org
	point    *point
	category string
}

func makeRow(g gen, of offer) []string {
	og, p, cat := of.org, of.point, of.category
	t := pick(g, templates[cat])
	h := pick(g, hours)
	switch {
	case roundTheClock[cat]:
		h = "круглосуточно"
	case cat == "cooling-rooms":
		h = "ежедневно с 10 до 20 в дни жары"
	}
	row := make([]string, numColumns)
	row[colOrgID] = og.id
	row[colOrgName] = og.name
	row[colINN] = og.inn
	row[colOGRN] = og.ogrn
	row[colService] = t.name
	row[colDescription] = t.description
	row[colCategory] = cat
	row[colPoint] = p.name
	row[colAddress] = p.address
	row[colDistrict] = p.district
	row[colOkrug] = p.okrug
	row[colPostalCode] = p.postal
	row[colLatitude] = strconv.FormatFloat(p.lat, 'f', 6, 64)
	row[colLongitude] = strconv.FormatFloat(p.lon, 'f', 6, 64)
	row[colPhone] = p.phone
	row[colEmail] = og.email
	row[colSite] = og.site
	row[colHours] = h
	return row
}

// buildOrgs creates the department's institutions and their service points.
func buildOrgs(g gen, extra int) []*org {
	districts := map[string][]string{}
	for _, d := range schemas.Districts() {
		if _, ok := geo[d.Okrug]; ok && d.Kind == schemas.KindDistrict {
			districts[d.Okrug] = append(districts[d.Okrug], d.Name)
		}
	}
	b := &orgBuilder{g: g, districts: districts, inns: map[string]bool{}}

	social := []string{"social-service-centre", "pensioners-activities", "cooling-rooms", "disability-support", "families-with-children"}
	for _, okrug := range []string{"ЮВАО", "ЦАО", "СВАО", "ЮАО", "ЗАО", "СЗАО", "ВАО"} {
		d := pick(g, districts[okrug])
		og := b.org(fmt.Sprintf("ГБУ ТЦСО \"%s\"", d), "tcso-"+slug(d), social)
		og.points = append(og.points, b.point(fmt.Sprintf("ТЦСО \"%s\"", d), okrug, d))
		for range 1 + g.intn(2) {
			d2 := pick(g, districts[okrug])
			og.points = append(og.points, b.point(fmt.Sprintf("ТЦСО \"%s\", филиал \"%s\"", d, d2), okrug, d2))
		}
	}

	czn := b.org(`ГКУ ЦЗН "Моя работа"`, "czn", []string{"employment", "employment-benefit", "career-guidance", "retraining"})
	for _, okrug := range []string{"ЦАО", "САО", "ЮВАО", "ЮЗАО", "СЗАО"} {
		d := pick(g, districts[okrug])
		czn.points = append(czn.points, b.point(fmt.Sprintf("Центр занятости «Моя работа» — %s", d), okrug, d))
	}

	psy := b.org(`ГБУ "Московская служба психологической помощи населению"`, "msppn", []string{"psychological-help", "psych-individual", "psych-group"})
	for _, okrug := range []string{"ВАО", "ЮАО", "ЗАО", "СВАО"} {
		d := pick(g, districts[okrug])
		psy.points = append(psy.points, b.point(fmt.Sprintf("МСППН, филиал \"%s\"", d), okrug, d))
	}

	med := b.org(`ГБУ "Центр семейной медиации и психологической поддержки"`, "mediacia", []string{"family-mediation", "psych-individual"})
	for _, okrug := range []string{"ЦАО", "ЮЗАО"} {
		d := pick(g, districts[okrug])
		med.points = append(med.points, b.point(fmt.Sprintf("Центр семейной медиации, отделение \"%s\"", d), okrug, d))
	}

	for _, okrug := range []string{"САО", "ЮВАО"} {
		d := pick(g, districts[okrug])
		fc := b.org(fmt.Sprintf("ГБУ Семейный центр \"%s\"", d), "sc-"+slug(d), []string{"families-with-children", "family-mediation", "psych-group"})
		fc.points = append(fc.points, b.point(fmt.Sprintf("Семейный центр \"%s\"", d), okrug, d))
	}

	law := b.org(`ГКУ "Государственное юридическое бюро города Москвы"`, "gub", []string{"legal-help"})
	for _, okrug := range []string{"ЦАО", "ВАО", "ЮАО"} {
		d := pick(g, districts[okrug])
		law.points = append(law.points, b.point(fmt.Sprintf("Государственное юридическое бюро — %s", d), okrug, d))
	}

	csa := b.org(`ГКУ "Центр социальной адаптации им. Е.П. Глинки"`, "csa-glinka", []string{"homeless-help"})
	for _, okrug := range []string{"ЮВАО", "САО"} {
		d := pick(g, districts[okrug])
		csa.points = append(csa.points, b.point(fmt.Sprintf("Центр социальной адаптации, отделение \"%s\"", d), okrug, d))
	}

	for i, okrug := range []string{"ЮЗАО", "СЗАО"} {
		d := pick(g, districts[okrug])
		n := 3 + 6*i + g.intn(5)
		p := b.org(fmt.Sprintf("ГБУ \"Пансионат для ветеранов труда № %d\"", n), fmt.Sprintf("pvt%d", n), []string{"care-homes"})
		p.points = append(p.points, b.point(fmt.Sprintf("Пансионат для ветеранов труда № %d", n), okrug, d))
	}
	pni := 10 + g.intn(20)
	pn := b.org(fmt.Sprintf("ГБСУСО \"Психоневрологический интернат № %d\"", pni), fmt.Sprintf("pni%d", pni), []string{"care-homes", "disability-support"})
	d := pick(g, districts["ВАО"])
	pn.points = append(pn.points, b.point(fmt.Sprintf("ПНИ № %d", pni), "ВАО", d))

	rc := b.org(`ГБУ "Реабилитационный центр для инвалидов "Преодоление""`, "preodolenie", []string{"disability-support"})
	for _, okrug := range []string{"ЮАО", "САО"} {
		d := pick(g, districts[okrug])
		rc.points = append(rc.points, b.point(fmt.Sprintf("Реабилитационный центр «Преодоление» — %s", d), okrug, d))
	}
	b.extra(extra)
	return b.orgs
}

// extraKinds are the kinds of the generated institutions: legal form and name, and the categories
// they draw from.
var extraKinds = []struct {
	form, name string
	categories []string
}{
	{"ГБУ", "Центр социального обслуживания", []string{"social-service-centre", "pensioners-activities", "disability-support", "families-with-children", "cooling-rooms"}},
	{"АНО", "Центр помощи семье", []string{"families-with-children", "family-mediation", "psych-individual", "psych-group", "legal-help"}},
	{"БФ", "Благотворительный фонд поддержки", []string{"homeless-help", "disability-support", "pensioners-activities", "legal-help"}},
	{"АНО", "Центр занятости и профориентации", []string{"employment", "career-guidance", "retraining", "psych-individual"}},
}

// extra adds n generated institutions with their points. Their addresses are numbered so that no
// two points share one: a point is a place of its own, as in the city.
func (b *orgBuilder) extra(n int) {
	g := b.g
	var okrugs []string
	for _, o := range okrugOrder {
		if len(b.districts[o]) > 0 {
			okrugs = append(okrugs, o)
		}
	}
	seq := 0
	for i := range n {
		k := extraKinds[g.intn(len(extraKinds))]
		cats := slices.Clone(k.categories)
		for j := len(cats) - 1; j > 0; j-- {
			r := g.intn(j + 1)
			cats[j], cats[r] = cats[r], cats[j]
		}
		cats = cats[:2+g.intn(min(3, len(cats)-1))]
		title := fmt.Sprintf("%s «%s» № %d", k.name, pick(g, extraWords), 1+i)
		og := b.org(fmt.Sprintf("%s \"%s\"", k.form, title), fmt.Sprintf("gen%d", 1+i), cats)
		for range 1 + g.intn(3) {
			okrug := pick(g, okrugs)
			d := pick(g, b.districts[okrug])
			p := b.point(fmt.Sprintf("%s — %s", title, d), okrug, d)
			seq++
			p.address = fmt.Sprintf("%s, д. %d, стр. %d", pick(g, geo[okrug].streets), 1+seq%150, 1+seq/150)
			og.points = append(og.points, p)
		}
	}
}

var extraWords = []string{"Забота", "Опора", "Надежда", "Участие", "Доверие", "Родник", "Семья", "Равные возможности", "Добрые руки", "Вместе"}

type orgBuilder struct {
	g         gen
	districts map[string][]string
	orgs      []*org
	inns      map[string]bool
}

func (b *orgBuilder) org(name, host string, categories []string) *org {
	inn := innLegal(b.g)
	for b.inns[inn] {
		inn = innLegal(b.g)
	}
	b.inns[inn] = true
	og := &org{
		id:         fmt.Sprintf("ORG-%04d", 1+len(b.orgs)),
		name:       name,
		inn:        inn,
		ogrn:       ogrn(b.g),
		site:       "https://" + host + ".mos.ru",
		categories: categories,
	}
	switch b.g.intn(3) {
	case 0:
		og.email = host + "@mos.ru"
	case 1:
		og.email = "info@" + host + ".mos.ru"
	default:
		og.email = "priem-" + host + "@social.mos.ru"
	}
	b.orgs = append(b.orgs, og)
	return og
}

func (b *orgBuilder) point(name, okrug, district string) point {
	g := b.g
	c := geo[okrug]
	address := fmt.Sprintf("%s, д. %d", pick(g, c.streets), 1+g.intn(120))
	switch g.intn(4) {
	case 0:
		address += fmt.Sprintf(", корп. %d", 1+g.intn(4))
	case 1:
		address += fmt.Sprintf(", стр. %d", 1+g.intn(3))
	}
	return point{
		name:     name,
		address:  address,
		district: district,
		okrug:    okrug,
		postal:   fmt.Sprintf("1%02d%03d", 9+g.intn(21), g.intn(1000)),
		phone:    phone(g),
		lat:      clamp(c.lat+g.float(-0.025, 0.025), 55.55, 55.92),
		lon:      clamp(c.lon+g.float(-0.04, 0.04), 37.35, 37.85),
	}
}

func clamp(x, lo, hi float64) float64 { return min(max(x, lo), hi) }

func phone(g gen) string {
	code := pick(g, []string{"495", "499"})
	a, b, c := 100+g.intn(900), g.intn(100), g.intn(100)
	switch g.intn(4) {
	case 0:
		return fmt.Sprintf("+7 (%s) %03d-%02d-%02d", code, a, b, c)
	case 1:
		return fmt.Sprintf("8 %s %03d %02d %02d", code, a, b, c)
	case 2:
		return fmt.Sprintf("+7 %s %03d-%02d-%02d", code, a, b, c)
	default:
		return fmt.Sprintf("8 (%s) %03d%02d%02d", code, a, b, c)
	}
}

// innLegal returns a Moscow legal entity's INN: 10 digits, the last a checksum.
func innLegal(g gen) string {
	d := make([]int, 9)
	d[0], d[1] = 7, 7
	for i := 2; i < 9; i++ {
		d[i] = g.intn(10)
	}
	var sb strings.Builder
	for _, x := range d {
		sb.WriteByte(byte('0' + x))
	}
	sb.WriteByte(byte('0' + innChecksum(d)))
	return sb.String()
}

// innChecksum returns the control digit of a legal entity's INN from its first nine digits.
func innChecksum(d []int) int {
	w := []int{2, 4, 10, 3, 5, 9, 4, 6, 8}
	s := 0
	for i, x := range d[:9] {
		s += w[i] * x
	}
	return s % 11 % 10
}

// ogrn returns a Moscow OGRN: 1, year, region 77, a record number, and the checksum.
func ogrn(g gen) string {
	n := int64(1)
	n = n*100 + int64(2+g.intn(22))
	n = n*100 + 77
	n = n*10_000_000 + int64(g.intn(10_000_000))
	return fmt.Sprintf("%012d%d", n, ogrnChecksum(n))
}

// ogrnChecksum returns the control digit of a 13-digit OGRN from its first twelve digits.
func ogrnChecksum(first12 int64) int {
	return int(first12 % 11 % 10)
}

func slug(s string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(s) {
		if t, ok := translit[r]; ok {
			sb.WriteString(t)
		}
	}
	return sb.String()
}
