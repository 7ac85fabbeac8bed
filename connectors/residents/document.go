package residents

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"socialhub/internal/event"
	"socialhub/internal/pseudonym"
	"socialhub/schemas"
)

// The resident document (schemas/resident.json). Struct order fixes the JSON key order, so the
// same row always gives the same bytes. A value that does not convert is kept as the registry's
// text, for the validator to report with its field; a missing one is left out, for the validator
// to report as required. Nothing here guesses.
type resident struct {
	ID              string     `json:"id"`
	Address         address    `json:"address"`
	RegisteredSince any        `json:"registered_since,omitempty"`
	BirthDate       any        `json:"birth_date,omitempty"`
	Household       *household `json:"household,omitempty"`
	DisabilityGroup any        `json:"disability_group,omitempty"`
	Pensioner       any        `json:"pensioner,omitempty"`
	LowIncome       any        `json:"low_income,omitempty"`
	LargeFamily     any        `json:"large_family,omitempty"`
}

type address struct {
	Address1   string `json:"address_1,omitempty"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code,omitempty"`
	District   string `json:"district,omitempty"`
	Okrug      string `json:"okrug,omitempty"`
}

type household struct {
	Members                  any `json:"members,omitempty"`
	ChildrenUnder18          any `json:"children_under_18,omitempty"`
	ChildrenWithDisabilities any `json:"children_with_disabilities,omitempty"`
}

// rejection is the whole data of a rejected row: where it was and why, never what it held.
type rejection struct {
	Row    string `json:"row"`
	Reason string `json:"reason"`
}

// getter returns a mapped column's value (nil when unmapped, missing or NULL).
type getter func(column string) any

// builder turns rows into records.
type builder struct {
	cols   Columns
	city   string
	pseudo *pseudonym.Pseudonymizer
}

// build maps one row. rowRef says where the row is ("id 17", "row 5") for a rejection. It returns
// the record's external id, op and data, and the reasons when the row is rejected.
func (b *builder) build(get getter, rowRef string, deleted bool) (string, string, []byte, []event.Reason, error) {
	pseudo, err := b.pseudo.Pseudonym(text(get(b.cols.NationalID)))
	if err != nil {
		data, merr := json.Marshal(rejection{Row: rowRef, Reason: err.Error()})
		if merr != nil {
			return "", "", nil, nil, merr
		}
		return "rejected-" + strings.ReplaceAll(rowRef, " ", "-"), event.OpUpsert, data,
			[]event.Reason{{Field: "national_id", Message: err.Error()}}, nil
	}
	if deleted {
		return pseudo, event.OpDelete, nil, nil, nil
	}
	c := b.cols
	r := resident{
		ID: pseudo,
		Address: address{
			Address1:   text(get(c.Address)),
			City:       b.city,
			PostalCode: text(get(c.PostalCode)),
			District:   district(text(get(c.District))),
			Okrug:      okrug(text(get(c.Okrug))),
		},
		RegisteredSince: date(get(c.RegisteredSince)),
		BirthDate:       date(get(c.BirthDate)),
		DisabilityGroup: disabilityGroup(get(c.DisabilityGroup), c.DisabilityGroup != ""),
		Pensioner:       boolean(get(c.Pensioner)),
		LowIncome:       boolean(get(c.LowIncome)),
		LargeFamily:     boolean(get(c.LargeFamily)),
	}
	h := household{
		Members:                  integer(get(c.HouseholdMembers)),
		ChildrenUnder18:          integer(get(c.ChildrenUnder18)),
		ChildrenWithDisabilities: integer(get(c.ChildrenWithDisabilities)),
	}
	if h != (household{}) {
		r.Household = &h
	}
	data, err := json.Marshal(r)
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("error encoding %s: %w", rowRef, err)
	}
	return pseudo, event.OpUpsert, data, nil, nil
}

// text renders a value as trimmed text.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case []byte:
		return strings.TrimSpace(string(x))
	case json.Number:
		return x.String()
	case time.Time:
		return x.Format(time.DateOnly)
	case fmt.Stringer:
		return strings.TrimSpace(x.String())
	default:
		return strings.TrimSpace(fmt.Sprint(x))
	}
}

// date returns YYYY-MM-DD from a date or timestamp value, or from text written as ГГГГ-ММ-ДД,
// ДД.ММ.ГГГГ or an RFC 3339 timestamp (its date as written).
func date(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.Format(time.DateOnly)
	}
	s := text(v)
	if s == "" {
		return nil
	}
	for _, layout := range []string{time.DateOnly, "02.01.2006", "2.1.2006", time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format(time.DateOnly)
		}
	}
	return s
}

// integer returns a whole number, or the text when it is not one.
func integer(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	}
	s := text(v)
	if s == "" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}

// boolean reads the ways registries write a flag: да/нет, д/н, true/false, 1/0, yes/no.
func boolean(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case bool:
		return x
	}
	s := strings.ToLower(text(v))
	switch s {
	case "":
		return nil
	case "да", "д", "true", "t", "1", "yes", "y", "истина":
		return true
	case "нет", "н", "false", "f", "0", "no", "n", "ложь":
		return false
	}
	return text(v)
}

// disabilityGroup maps the registry's notations to the schema's: none, I, II, III, child. An empty
// value in a mapped column is "none": registries leave the cell empty for people without one.
func disabilityGroup(v any, mapped bool) any {
	if !mapped {
		return nil
	}
	s := strings.ToLower(strings.Join(strings.Fields(text(v)), " "))
	s = strings.ReplaceAll(s, "ё", "е")
	s = strings.TrimSuffix(strings.TrimSuffix(s, " группа"), " гр.")
	s = strings.TrimPrefix(s, "группа ")
	switch s {
	case "", "нет", "none", "0", "-":
		return "none"
	case "i", "1", "первая":
		return "I"
	case "ii", "2", "вторая":
		return "II"
	case "iii", "3", "третья":
		return "III"
	case "child", "ребенок-инвалид", "ребенок инвалид", "ди", "категория ребенок-инвалид":
		return "child"
	}
	return text(v)
}

// nameKey folds what differs between ways of writing one name: case, ё, runs of spaces.
func nameKey(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.Join(strings.Fields(s), " ")), "ё", "е")
}

var (
	districtNames = func() map[string]string {
		m := map[string]string{}
		for _, d := range schemas.Districts() {
			m[nameKey(d.Name)] = d.Name
			for _, v := range d.Variants {
				m[nameKey(v)] = d.Name
			}
		}
		return m
	}()
	okrugNames = func() map[string]string {
		m := map[string]string{}
		for _, o := range schemas.Okrugs() {
			m[nameKey(o.Short)] = o.Short
			m[nameKey(o.Name)] = o.Short
		}
		return m
	}()
)

// district returns the reference name of a district when the text names one (schemas/
// districts.json, variants included), the text itself otherwise.
func district(s string) string {
	if n, ok := districtNames[nameKey(s)]; ok {
		return n
	}
	for _, prefix := range []string{"район ", "р-н ", "р-н. ", "поселение ", "пос. "} {
		if n, ok := districtNames[nameKey(strings.TrimPrefix(nameKey(s), prefix))]; ok {
			return n
		}
	}
	return s
}

// okrug returns an okrug's short name when the text names one (short or full name).
func okrug(s string) string {
	if n, ok := okrugNames[nameKey(s)]; ok {
		return n
	}
	return s
}
