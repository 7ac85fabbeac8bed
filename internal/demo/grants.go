package demo

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"
)

// Defaults of GrantsOptions.
const (
	DefaultGrantRows   = 80
	DefaultGrantBroken = 4
	// DefaultGrantsSource names the grant source in ground-truth rows.
	DefaultGrantsSource = "demo-grants"
)

// GrantColumns is the header of the grant lists, in order.
var GrantColumns = []string{
	"Номер заявки", "ИНН", "ОГРН", "Наименование организации", "Регион", "Название проекта",
	"Сумма гранта", "Дата начала", "Дата окончания", "Статус",
}

// GrantsOptions shape a generated grant list.
type GrantsOptions struct {
	Seed   int64 // 0 means DefaultSeed
	Rows   int   // valid rows; 0 means DefaultGrantRows
	Broken int   // broken rows added; 0 means DefaultGrantBroken, negative means none
	// Department are the options of the department file whose institutions also appear in the
	// list, spelled the way grant operators spell them.
	Department Options
	// Source names the list in the ground-truth rows (default DefaultGrantsSource).
	Source string
}

// GrantsManifest says what a grant list holds.
type GrantsManifest struct {
	// Valid lists the application numbers of the rows that should reach the catalog, in file order.
	Valid []string
	// Broken lists the rows broken on purpose, with the field the hub reports.
	Broken []BrokenRow
	// Rejected lists the broken rows the connector itself rejects (a checksum that does not hold);
	// the validator rejects the others.
	Rejected []string
	// Truth says which organization every row (broken ones included) is; rows of a department
	// institution carry its OrganizationTruthID.
	Truth []TruthRow
	// Department lists the application numbers of the rows whose organization is a department
	// institution.
	Department []string
}

// grantRow is one row of the list before it is written: text cells, plus typed values the XLSX
// writer may store as numbers and dates.
type grantRow struct {
	cells  []string
	amount float64   // kopecks-exact in float64 for the sizes used (below 2^53 kopecks)
	start  time.Time // project dates
	end    time.Time
	truth  string
}

// Column positions in GrantColumns.
const (
	gcNumber = iota
	gcINN
	gcOGRN
	gcName
	gcRegion
	gcTitle
	gcAmount
	gcStart
	gcEnd
	gcStatus
	numGrantColumns
)

// ngoNames are the NGOs of the demo world that no department lists.
var ngoNames = []string{
	`АНО "Центр поддержки семьи «Вместе»"`,
	`Благотворительный фонд "Тёплый дом"`,
	`РОО "Родители особых детей"`,
	`АНО "Школа активного долголетия"`,
	`АНО "Мастерская равных возможностей"`,
	`МОО "Соседская помощь"`,
	`Фонд "Право на защиту"`,
	`АНО "Центр медиации «Согласие»"`,
	`АНО "Не один"`,
	`БФ "Горячий обед"`,
	`АНО "Карьерный лифт 50+"`,
	`РОО "Жизнь без барьеров"`,
}

var projectTitles = []string{
	"Серебряный волонтёр", "Школа семейной медиации", "Тёплый обед для одиноких пенсионеров",
	"Карьерный старт после 50", "Доступная среда: прокат ТСР", "Психологическая помощь подросткам онлайн",
	"Юридическая клиника для многодетных семей", "Соседский центр «Рядом»", "Ночной патруль",
	"Активное долголетие в каждом дворе", "Инклюзивная мастерская", "Родительский клуб",
}

var grantStatuses = []string{"реализуется", "реализуется", "завершён", "победитель конкурса"}

// legalForms expand the abbreviations department institutions use for their legal form.
var legalForms = []struct{ short, full string }{
	{"ГБСУСО", "Государственное бюджетное стационарное учреждение социального обслуживания города Москвы"},
	{"ГБУ", "Государственное бюджетное учреждение города Москвы"},
	{"ГКУ", "Государственное казённое учреждение города Москвы"},
	{"ТЦСО", "Территориальный центр социального обслуживания"},
	{"ЦЗН", "Центр занятости населения"},
}

// spellings are the ways a grant operator writes a department institution's name.
var spellings = []func(name string) string{
	func(n string) string { return n },
	guillemets,
	func(n string) string { return expandLegalForm(guillemets(n)) },
	func(n string) string { return strings.ReplaceAll(strings.Replace(n, " ", "  ", 1), `"`, "&quot;") },
	func(n string) string { return strings.Replace(n, " ", "\n", 1) },
	func(n string) string { return " " + strings.ReplaceAll(n, `"`, "&laquo;") + " " },
}

// guillemets turns straight quotes into «»: a quote at the start or after a space opens, any
// other closes, which is how nested names («Центр «Преодоление»») come out.
func guillemets(n string) string {
	var b strings.Builder
	prev := ' '
	for _, r := range n {
		if r == '"' {
			if prev == ' ' {
				r = '«'
			} else {
				r = '»'
			}
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

func expandLegalForm(n string) string {
	for _, lf := range legalForms {
		n = strings.Replace(n, lf.short+" ", lf.full+" ", 1)
	}
	return n
}

func (o GrantsOptions) withDefaults() (GrantsOptions, error) {
	if o.Rows < 0 {
		return o, fmt.Errorf("%w: rows must not be negative, got %d", ErrBadOptions, o.Rows)
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Rows == 0 {
		o.Rows = DefaultGrantRows
	}
	switch {
	case o.Broken == 0:
		o.Broken = DefaultGrantBroken
	case o.Broken < 0:
		o.Broken = 0
	}
	if o.Source == "" {
		o.Source = DefaultGrantsSource
	}
	dep, err := o.Department.withDefaults()
	if err != nil {
		return o, err
	}
	o.Department = dep
	return o, nil
}

// grantee is an organization that receives grants.
type grantee struct {
	truth, name, inn, ogrn string
	department             bool
}

// grantBreakages are the ways a grant row is broken, applied in turn.
var grantBreakages = []struct {
	field, why string
	atSource   bool
	apply      func(r *grantRow)
}{
	{"organization_identifiers.0.identifier", "ИНН control digit does not hold", true, func(r *grantRow) { r.cells[gcINN] = breakDigit(r.cells[gcINN]) }},
	{"name", "empty organization name", false, func(r *grantRow) { r.cells[gcName] = "" }},
	{"organization_identifiers.1.identifier", "ОГРН control digit does not hold", true, func(r *grantRow) { r.cells[gcOGRN] = breakDigit(r.cells[gcOGRN]) }},
	{"name", "organization name is only spaces", false, func(r *grantRow) { r.cells[gcName] = " \u00a0 " }},
}

// breakDigit changes the control digit, so the checksum no longer holds.
func breakDigit(s string) string {
	last := s[len(s)-1]
	return s[:len(s)-1] + string(rune('0'+(last-'0'+1)%10))
}

// generateGrants builds the list: a grant for some department institutions, spelled their way,
// and grants of the demo world's NGOs, with the broken rows spread among them.
func generateGrants(o GrantsOptions, prefix func(g gen, i int) string) ([]grantRow, GrantsManifest) {
	g := gen{rand.NewPCG(uint64(o.Seed), 0x6a4e75)}
	var grantees []grantee
	deps := departmentOrgs(o.Department)
	// Every third institution won a grant; the rest of the list are NGOs.
	var depGrantees []grantee
	for i, og := range deps {
		if i%3 == 0 {
			depGrantees = append(depGrantees, grantee{truth: OrganizationTruthID(og.inn), name: og.name, inn: og.inn, ogrn: og.ogrn, department: true})
		}
	}
	inns := map[string]bool{}
	for _, og := range deps {
		inns[og.inn] = true
	}
	nNGO := max(len(ngoNames), o.Rows/3)
	for i := range nNGO {
		name := ""
		if i < len(ngoNames) {
			name = ngoNames[i]
		} else {
			name = fmt.Sprintf(`АНО "Социальный проект № %d"`, i+1)
		}
		inn := innLegal(g)
		for inns[inn] {
			inn = innLegal(g)
		}
		inns[inn] = true
		// An NGO is its INN, as a department institution is: each list draws its own NGOs, and a
		// number of the list's own would name different NGOs in two lists.
		grantees = append(grantees, grantee{truth: OrganizationTruthID(inn), name: name, inn: inn, ogrn: ogrn(g)})
	}

	total := o.Rows + o.Broken
	brokenAt := map[int]int{}
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
	rows := make([]grantRow, 0, total)
	man := GrantsManifest{}
	for i := range total {
		var who grantee
		spelled := ""
		switch {
		case i < len(depGrantees) && i < o.Rows:
			who = depGrantees[i]
			spelled = spellings[i%len(spellings)](who.name)
		default:
			who = grantees[g.intn(len(grantees))]
			spelled = who.name
			if g.intn(8) == 0 {
				spelled = strings.ReplaceAll(spelled, `"`, "&quot;")
			}
		}
		r := grantRow{cells: make([]string, numGrantColumns), truth: who.truth}
		r.cells[gcNumber] = prefix(g, i)
		r.cells[gcINN] = who.inn
		r.cells[gcOGRN] = who.ogrn
		r.cells[gcName] = spelled
		r.cells[gcRegion] = pick(g, []string{"г. Москва", "г. Москва", "Москва", "г.Москва"})
		title := pick(g, projectTitles)
		if g.intn(10) == 0 {
			title = strings.Replace(title, " ", "\n", 1) // a line break typed into the cell
		}
		r.cells[gcTitle] = title
		kopecks := int64(100_000+g.intn(2_900_000)) * 100
		if g.intn(4) == 0 {
			kopecks += int64(g.intn(100))
		}
		r.amount = float64(kopecks) / 100
		r.cells[gcAmount] = spellAmount(g, kopecks)
		r.start = time.Date(2023+g.intn(3), time.Month(1+g.intn(12)), 1, 0, 0, 0, 0, time.UTC)
		r.end = r.start.AddDate(0, 6+g.intn(18), -1)
		r.cells[gcStart] = r.start.Format("02.01.2006")
		r.cells[gcEnd] = r.end.Format("02.01.2006")
		if g.intn(5) == 0 {
			r.cells[gcStart], r.cells[gcEnd] = r.start.Format(time.DateOnly), r.end.Format(time.DateOnly)
		}
		r.cells[gcStatus] = pick(g, grantStatuses)
		id := r.cells[gcNumber]
		if k, broken := brokenAt[i]; broken {
			b := grantBreakages[k%len(grantBreakages)]
			b.apply(&r)
			man.Broken = append(man.Broken, BrokenRow{ID: id, Field: b.field, Why: b.why})
			if b.atSource {
				man.Rejected = append(man.Rejected, id)
			}
		} else {
			man.Valid = append(man.Valid, id)
		}
		if who.department {
			man.Department = append(man.Department, id)
		}
		man.Truth = append(man.Truth, TruthRow{EntityType: "organization", Source: o.Source, ExternalID: id, TruthID: who.truth})
		rows = append(rows, r)
	}
	return rows, man
}

// spellAmount writes kopecks the ways Russian lists do.
func spellAmount(g gen, kopecks int64) string {
	rub, kop := kopecks/100, kopecks%100
	groups := func(sep string) string {
		s := fmt.Sprint(rub)
		var parts []string
		for len(s) > 3 {
			parts = append([]string{s[len(s)-3:]}, parts...)
			s = s[:len(s)-3]
		}
		return strings.Join(append([]string{s}, parts...), sep)
	}
	switch g.intn(5) {
	case 0:
		return fmt.Sprintf("%s,%02d", groups(" "), kop)
	case 1:
		return fmt.Sprintf("%s,%02d", groups("\u00a0"), kop)
	case 2:
		return fmt.Sprintf("%s,%02d руб.", groups(" "), kop)
	case 3:
		if rub < 1_000_000 {
			// «338.383» alone could be 338 roubles 38 kopecks: lists write it only with two dots.
			return groups(" ") + " р." // WriteGrantsXLSX writes «₽», which Windows-1251 lacks
		}
		if kop == 0 {
			return groups(".")
		}
		return fmt.Sprintf("%s,%02d", groups("."), kop)
	default:
		return fmt.Sprintf("%d.%02d", rub, kop)
	}
}

// WriteGrantsXLSX writes the Фонд президентских грантов style list as an XLSX workbook: a title
// row, the header, then the rows, amounts and dates as numbers and dates in some rows and as text
// in others, as exported lists mix them. It streams rows, so large lists stay cheap.
func WriteGrantsXLSX(w io.Writer, opts GrantsOptions) (GrantsManifest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return GrantsManifest{}, err
	}
	rows, man := generateGrants(opts, func(g gen, i int) string {
		return fmt.Sprintf("%02d-%d-%06d", 23+i%3, 1+i%2, 1000+i*7+g.intn(7))
	})
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "Победители"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return GrantsManifest{}, fmt.Errorf("error naming the sheet: %w", err)
	}
	dateStyle, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	if err != nil {
		return GrantsManifest{}, fmt.Errorf("error adding the date style: %w", err)
	}
	moneyStyle, err := f.NewStyle(&excelize.Style{NumFmt: 4})
	if err != nil {
		return GrantsManifest{}, fmt.Errorf("error adding the amount style: %w", err)
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return GrantsManifest{}, fmt.Errorf("error opening the sheet: %w", err)
	}
	if err := sw.SetRow("A1", []any{"Перечень победителей конкурса на предоставление грантов Президента Российской Федерации"}); err != nil {
		return GrantsManifest{}, fmt.Errorf("error writing the title: %w", err)
	}
	header := make([]any, len(GrantColumns))
	for i, h := range GrantColumns {
		header[i] = h
	}
	if err := sw.SetRow("A3", header); err != nil {
		return GrantsManifest{}, fmt.Errorf("error writing the header: %w", err)
	}
	for i, r := range rows {
		cells := make([]any, numGrantColumns)
		for j, c := range r.cells {
			cells[j] = c
		}
		if a, ok := strings.CutSuffix(r.cells[gcAmount], " р."); ok {
			cells[gcAmount] = a + "\u00a0₽"
		}
		// Every other row stores its amount and dates as typed cells, unless broken on purpose.
		if i%2 == 0 {
			cells[gcAmount] = excelize.Cell{StyleID: moneyStyle, Value: r.amount}
			if r.cells[gcStart] != "" && r.cells[gcEnd] != "" {
				cells[gcStart] = excelize.Cell{StyleID: dateStyle, Value: r.start}
				cells[gcEnd] = excelize.Cell{StyleID: dateStyle, Value: r.end}
			}
		}
		if i%3 == 1 && r.cells[gcINN] != "" && r.cells[gcINN][0] != '0' {
			if n, err := strconv.ParseInt(r.cells[gcINN], 10, 64); err == nil {
				cells[gcINN] = n // stored as a number, as spreadsheets do with digit strings
			}
		}
		cell, err := excelize.CoordinatesToCellName(1, 4+i)
		if err != nil {
			return GrantsManifest{}, err
		}
		if err := sw.SetRow(cell, cells); err != nil {
			return GrantsManifest{}, fmt.Errorf("error writing row %d: %w", i+1, err)
		}
	}
	if err := sw.Flush(); err != nil {
		return GrantsManifest{}, fmt.Errorf("error writing the sheet: %w", err)
	}
	if err := f.Write(w); err != nil {
		return GrantsManifest{}, fmt.Errorf("error writing the workbook: %w", err)
	}
	return man, nil
}

// WriteGrantsCSVWindows1251 writes the city grant programme's list as a Windows-1251 CSV with ";"
// and a header, the way office software exports it.
func WriteGrantsCSVWindows1251(w io.Writer, opts GrantsOptions) (GrantsManifest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return GrantsManifest{}, err
	}
	rows, man := generateGrants(opts, func(g gen, i int) string {
		return fmt.Sprintf("СП-%d-%05d", 2023+i%3, 10+i*3+g.intn(3))
	})
	ew := charmap.Windows1251.NewEncoder().Writer(w)
	cw := csv.NewWriter(ew)
	cw.Comma = ';'
	cw.UseCRLF = true
	if err := cw.Write(GrantColumns); err != nil {
		return GrantsManifest{}, fmt.Errorf("error writing the header: %w", err)
	}
	for i, r := range rows {
		if err := cw.Write(r.cells); err != nil {
			return GrantsManifest{}, fmt.Errorf("error writing row %d: %w", i+1, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return GrantsManifest{}, fmt.Errorf("error writing the list: %w", err)
	}
	return man, nil
}
