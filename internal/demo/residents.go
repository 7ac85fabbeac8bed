package demo

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"socialhub/internal/normalize"
	"socialhub/schemas"
)

// The residents' registry of the demo: synthetic people with valid СНИЛС numbers, names,
// passports and phones (which the residents connector must drop), registration addresses on real
// streets of real districts, and households shaped like the city's: singles, pensioner couples,
// families with children (some with a disabled child), large families.

// DefaultResidentsTable is the registry table the demo creates, and the residents kind reads by
// default.
const DefaultResidentsTable = "registry_residents"

// Disability groups as the registry writes them; "" is none.
const (
	RegistryDisabilityChild = "ребёнок-инвалид"
)

// Resident is one row of the registry.
type Resident struct {
	ID         int64
	UpdatedAt  time.Time
	SNILS      string // as the registry prints it: «112-233-445 95»
	LastName   string
	FirstName  string
	MiddleName string
	Passport   string // «45 12 345678»
	Phone      string
	BirthDate  time.Time
	Address    string
	District   string // sometimes written «р-н …», as registries do
	Okrug      string // sometimes the okrug's full name instead of its short one
	PostalCode string

	RegisteredSince          time.Time
	HouseholdMembers         int
	ChildrenUnder18          int
	ChildrenWithDisabilities int
	DisabilityGroup          string // "", "I", "II", "III" or RegistryDisabilityChild
	Pensioner                bool
	LowIncome                bool
	LargeFamily              bool
	Deleted                  bool
}

// ResidentColumns are the registry's columns, in table and file order.
var ResidentColumns = []string{
	"id", "updated_at", "snils", "last_name", "first_name", "middle_name", "passport", "phone",
	"birth_date", "address", "district", "okrug", "postal_code", "registered_since", "household_members",
	"children_under_18", "children_with_disabilities", "disability_group", "pensioner", "low_income",
	"large_family", "deleted",
}

// residentsToday is the demo world's "today": ages and dates are computed from it, never from the
// clock, so a seed gives the same rows on any day.
var residentsToday = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

var (
	maleLast    = []string{"Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров"}
	maleFirst   = []string{"Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Евгений", "Иван", "Михаил", "Артём", "Николай", "Владимир", "Юрий", "Виктор", "Павел", "Олег", "Игорь", "Константин"}
	femaleFirst = []string{"Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Анна", "Мария", "Светлана", "Екатерина", "Юлия", "Галина", "Людмила", "Валентина", "Марина", "Дарья", "Ксения", "Нина", "Вера"}
	patronymics = []string{"Александров", "Сергеев", "Дмитриев", "Андреев", "Алексеев", "Иванов", "Михайлов", "Николаев", "Владимиров", "Юрьев", "Викторов", "Павлов", "Петров", "Васильев"}
	mobileCodes = []string{"903", "905", "909", "915", "916", "925", "926", "929", "965", "977", "985", "999"}
)

// household shapes, with their share of residents in per mille.
const (
	shapeSingle = iota
	shapePensionerCouple
	shapeFamily
	shapeLargeFamily
	shapeDisabledChild // the resident is a child with a disability, in a family
)

var shapeWeights = []struct{ shape, perMille int }{
	{shapeSingle, 330}, {shapePensionerCouple, 200}, {shapeFamily, 340}, {shapeLargeFamily, 110}, {shapeDisabledChild, 20},
}

// snilsModulus and snilsStride map row numbers one-to-one onto the numbers above 001-001-998 (the
// stride is coprime with the modulus), so no two residents share a СНИЛС.
const (
	snilsFirst   = 1001999
	snilsModulus = 999999999 - snilsFirst + 1
	snilsStride  = 387420489 // 3^18; the modulus is 2^4·5^3·499499, with no factor 3
)

type place struct {
	district, okrug string
	streets         []string
}

func residentPlaces() []place {
	var out []place
	for _, d := range schemas.Districts() {
		g, ok := geo[d.Okrug]
		if !ok || d.Kind != schemas.KindDistrict {
			continue
		}
		out = append(out, place{d.Name, d.Okrug, g.streets})
	}
	return out
}

// Residents generates n registry rows from seed; the same arguments give the same rows. Ids run
// from 1 to n; updated_at values repeat in runs of three, as a registry's batch updates do.
func Residents(n int, seed int64) []Resident {
	if n <= 0 {
		return nil
	}
	if seed == 0 {
		seed = DefaultSeed
	}
	g := gen{rand.NewPCG(uint64(seed), 0x7e51de)}
	places := residentPlaces()
	okrugNames := map[string]string{}
	for _, o := range schemas.Okrugs() {
		okrugNames[o.Short] = o.Name
	}
	offset := g.intn(snilsModulus)
	base := residentsToday.AddDate(0, -1, 0)
	out := make([]Resident, n)
	for i := range out {
		r := &out[i]
		r.ID = int64(i + 1)
		r.UpdatedAt = base.Add(time.Duration(i/3) * time.Second)
		num := snilsFirst + (offset+int((int64(i)*snilsStride)%snilsModulus))%snilsModulus
		digits := fmt.Sprintf("%09d", num)
		r.SNILS = normalize.FormatSNILS(fmt.Sprintf("%s%02d", digits, normalize.SNILSControl(digits)))

		male := g.intn(2) == 0
		r.LastName, r.FirstName = pick(g, maleLast), pick(g, maleFirst)
		r.MiddleName = pick(g, patronymics) + "ич"
		if !male {
			r.LastName += "а"
			r.FirstName = pick(g, femaleFirst)
			r.MiddleName = r.MiddleName[:len(r.MiddleName)-len("ич")] + "на"
		}
		r.Passport = fmt.Sprintf("45 %02d %06d", 1+g.intn(24), g.intn(1000000))
		r.Phone = fmt.Sprintf("+7 (%s) %03d-%02d-%02d", pick(g, mobileCodes), g.intn(1000), g.intn(100), g.intn(100))

		p := pick(g, places)
		r.District, r.Okrug = p.district, p.okrug
		r.Address = fmt.Sprintf("%s, д. %d, кв. %d", pick(g, p.streets), 1+g.intn(120), 1+g.intn(400))
		if k := g.intn(8); k < 4 {
			r.Address = fmt.Sprintf("%s, д. %d, корп. %d, кв. %d", pick(g, p.streets), 1+g.intn(120), 1+k, 1+g.intn(400))
		}
		r.PostalCode = fmt.Sprintf("1%05d", 9000+g.intn(20000))
		switch g.intn(10) {
		case 0:
			r.District = "р-н " + r.District
		case 1:
			r.Okrug = okrugNames[r.Okrug]
		}

		shape := shapeSingle
		w := g.intn(1000)
		for _, sw := range shapeWeights {
			if w < sw.perMille {
				shape = sw.shape
				break
			}
			w -= sw.perMille
		}
		var age int
		switch shape {
		case shapeSingle:
			age = 19 + g.intn(75)
			r.HouseholdMembers = 1
			r.LowIncome = g.intn(100) < 12
		case shapePensionerCouple:
			age = 62 + g.intn(28)
			r.HouseholdMembers = 2
			r.LowIncome = g.intn(100) < 8
		case shapeFamily:
			age = 24 + g.intn(28)
			r.ChildrenUnder18 = 1 + g.intn(2)
			r.HouseholdMembers = 1 + g.intn(2) + r.ChildrenUnder18
			if g.intn(100) < 5 {
				r.ChildrenWithDisabilities = 1
			}
			r.LowIncome = g.intn(100) < 18
		case shapeLargeFamily:
			age = 27 + g.intn(25)
			r.ChildrenUnder18 = 3 + g.intn(3)
			r.HouseholdMembers = 2 + r.ChildrenUnder18 - g.intn(2)
			r.LargeFamily = true
			if g.intn(100) < 10 {
				r.ChildrenWithDisabilities = 1
			}
			r.LowIncome = g.intn(100) < 45
		case shapeDisabledChild:
			age = 3 + g.intn(15)
			r.ChildrenUnder18 = 1 + g.intn(3)
			r.ChildrenWithDisabilities = 1
			r.HouseholdMembers = 1 + g.intn(2) + r.ChildrenUnder18
			r.LargeFamily = r.ChildrenUnder18 >= 3
			r.DisabilityGroup = RegistryDisabilityChild
			r.LowIncome = g.intn(100) < 30
		}
		r.BirthDate = residentsToday.AddDate(-age, -g.intn(12), -g.intn(28)-1)
		if shape != shapeDisabledChild && g.intn(100) < 7+age/10 {
			r.DisabilityGroup = pick(g, []string{"I", "II", "II", "III", "III", "III"})
		}
		pensionAge := 63
		if !male {
			pensionAge = 58
		}
		r.Pensioner = age >= pensionAge || r.DisabilityGroup == "I" || r.DisabilityGroup == "II"
		// Registered at birth for a part of the residents, later for the others, never before birth.
		since := r.BirthDate.AddDate(0, 0, 7)
		if age > 18 && g.intn(3) > 0 {
			since = r.BirthDate.AddDate(18+g.intn(age-17), g.intn(12), g.intn(28))
		}
		if since.After(residentsToday) {
			since = residentsToday.AddDate(0, 0, -1-g.intn(300))
		}
		r.RegisteredSince = since
	}
	return out
}

// Conn is what WriteResidentsTable needs: a *pgx.Conn, *pgxpool.Pool or pgx.Tx.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// CreateResidentsTable creates the registry's table as the demo registry has it (if it does not
// exist), with the (updated_at, id) index the residents connector pages by.
func CreateResidentsTable(ctx context.Context, conn Conn, table string) error {
	id := pgx.Identifier{table}.Sanitize()
	idx := pgx.Identifier{table + "_updated_at_id_idx"}.Sanitize()
	_, err := conn.Exec(ctx, `
		CREATE TABLE IF NOT EXISTS `+id+` (
			id                         bigint PRIMARY KEY,
			updated_at                 timestamptz NOT NULL,
			snils                      text NOT NULL,
			last_name                  text NOT NULL,
			first_name                 text NOT NULL,
			middle_name                text,
			passport                   text,
			phone                      text,
			birth_date                 date NOT NULL,
			address                    text NOT NULL,
			district                   text,
			okrug                      text,
			postal_code                text,
			registered_since           date NOT NULL,
			household_members          integer NOT NULL,
			children_under_18          integer NOT NULL,
			children_with_disabilities integer NOT NULL,
			disability_group           text,
			pensioner                  boolean NOT NULL,
			low_income                 boolean NOT NULL,
			large_family               boolean NOT NULL,
			deleted                    boolean NOT NULL DEFAULT false
		);
		CREATE INDEX IF NOT EXISTS `+idx+` ON `+id+` (updated_at, id)`)
	if err != nil {
		return fmt.Errorf("error creating table %s: %w", table, err)
	}
	return nil
}

// CopyResidents loads rows into the registry's table with COPY.
func CopyResidents(ctx context.Context, conn Conn, table string, rows []Resident) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= len(rows) {
			return nil, nil
		}
		r := &rows[i]
		i++
		return []any{
			r.ID, r.UpdatedAt, r.SNILS, r.LastName, r.FirstName, r.MiddleName, r.Passport, r.Phone,
			r.BirthDate, r.Address, r.District, r.Okrug, r.PostalCode, r.RegisteredSince, r.HouseholdMembers,
			r.ChildrenUnder18, r.ChildrenWithDisabilities, nullable(r.DisabilityGroup), r.Pensioner, r.LowIncome,
			r.LargeFamily, r.Deleted,
		}, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, ResidentColumns, src); err != nil {
		return fmt.Errorf("error copying %d residents into %s: %w", len(rows), table, err)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// WriteResidentsTable creates the registry's table (see CreateResidentsTable) and loads n
// generated residents into it with COPY.
func WriteResidentsTable(ctx context.Context, conn Conn, table string, n int, seed int64) error {
	if n < 0 {
		return fmt.Errorf("%w: residents must not be negative, got %d", ErrBadOptions, n)
	}
	if err := CreateResidentsTable(ctx, conn, table); err != nil {
		return err
	}
	return CopyResidents(ctx, conn, table, Residents(n, seed))
}

// Snapshot formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// WriteResidentsSnapshot writes n generated residents as a full registry export: CSV (UTF-8, ";"
// separated, a header of ResidentColumns, dates as ДД.ММ.ГГГГ and flags as да/нет, as office
// exports write them) or JSONL (one object per line, ISO dates, JSON booleans). Rows marked
// deleted are not part of a snapshot.
func WriteResidentsSnapshot(w io.Writer, format string, n int, seed int64) error {
	if n < 0 {
		return fmt.Errorf("%w: residents must not be negative, got %d", ErrBadOptions, n)
	}
	return EncodeResidents(w, format, Residents(n, seed))
}

// EncodeResidents writes rows as WriteResidentsSnapshot does.
func EncodeResidents(w io.Writer, format string, rows []Resident) error {
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		cw.Comma = ';'
		if err := cw.Write(ResidentColumns[:len(ResidentColumns)-1]); err != nil {
			return fmt.Errorf("error writing header: %w", err)
		}
		rec := make([]string, 0, len(ResidentColumns))
		for i := range rows {
			r := &rows[i]
			if r.Deleted {
				continue
			}
			rec = append(rec[:0], strconv.FormatInt(r.ID, 10), r.UpdatedAt.UTC().Format(time.RFC3339), r.SNILS,
				r.LastName, r.FirstName, r.MiddleName, r.Passport, r.Phone, r.BirthDate.Format("02.01.2006"),
				r.Address, r.District, r.Okrug, r.PostalCode, r.RegisteredSince.Format("02.01.2006"),
				strconv.Itoa(r.HouseholdMembers), strconv.Itoa(r.ChildrenUnder18), strconv.Itoa(r.ChildrenWithDisabilities),
				r.DisabilityGroup, yesNo(r.Pensioner), yesNo(r.LowIncome), yesNo(r.LargeFamily))
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("error writing resident %d: %w", r.ID, err)
			}
		}
		cw.Flush()
		return cw.Error()
	case FormatJSONL:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for i := range rows {
			r := &rows[i]
			if r.Deleted {
				continue
			}
			if err := enc.Encode(jsonResident{
				ID: r.ID, UpdatedAt: r.UpdatedAt.UTC().Format(time.RFC3339), SNILS: r.SNILS, LastName: r.LastName,
				FirstName: r.FirstName, MiddleName: r.MiddleName, Passport: r.Passport, Phone: r.Phone,
				BirthDate: r.BirthDate.Format(time.DateOnly), Address: r.Address, District: r.District, Okrug: r.Okrug,
				PostalCode: r.PostalCode, RegisteredSince: r.RegisteredSince.Format(time.DateOnly),
				HouseholdMembers: r.HouseholdMembers, ChildrenUnder18: r.ChildrenUnder18,
				ChildrenWithDisabilities: r.ChildrenWithDisabilities, DisabilityGroup: r.DisabilityGroup,
				Pensioner: r.Pensioner, LowIncome: r.LowIncome, LargeFamily: r.LargeFamily,
			}); err != nil {
				return fmt.Errorf("error writing resident %d: %w", r.ID, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: snapshot format must be csv or jsonl, got %q", ErrBadOptions, format)
}

type jsonResident struct {
	ID                       int64  `json:"id"`
	UpdatedAt                string `json:"updated_at"`
	SNILS                    string `json:"snils"`
	LastName                 string `json:"last_name"`
	FirstName                string `json:"first_name"`
	MiddleName               string `json:"middle_name"`
	Passport                 string `json:"passport"`
	Phone                    string `json:"phone"`
	BirthDate                string `json:"birth_date"`
	Address                  string `json:"address"`
	District                 string `json:"district"`
	Okrug                    string `json:"okrug"`
	PostalCode               string `json:"postal_code"`
	RegisteredSince          string `json:"registered_since"`
	HouseholdMembers         int    `json:"household_members"`
	ChildrenUnder18          int    `json:"children_under_18"`
	ChildrenWithDisabilities int    `json:"children_with_disabilities"`
	DisabilityGroup          string `json:"disability_group"`
	Pensioner                bool   `json:"pensioner"`
	LowIncome                bool   `json:"low_income"`
	LargeFamily              bool   `json:"large_family"`
}

func yesNo(b bool) string {
	if b {
		return "да"
	}
	return "нет"
}
