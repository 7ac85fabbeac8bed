package residents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"socialhub/connectors"
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
	RegisteredSince string     `json:"registered_since,omitempty"`
	BirthDate       string     `json:"birth_date,omitempty"`
	Household       *household `json:"household,omitempty"`
	DisabilityGroup string     `json:"disability_group,omitempty"`
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

// builder turns rows into records, one row at a time.
type builder struct {
	cols   Columns
	city   string
	pseudo *pseudonym.Pseudonymizer
	names  names
	buf    []byte // the document being written
}

// names remembers what the registry's spellings of districts, okrugs and disability groups map
// to: a registry repeats a few hundred spellings over millions of rows, and folding each costs
// several allocations. Each map stops growing at maxNames, past which spellings are folded anew.
type names struct {
	districts, okrugs, groups map[string]string
}

const maxNames = 4096

func remember(m *map[string]string, s string, fold func(string) string) string {
	if v, ok := (*m)[s]; ok {
		return v
	}
	v := fold(s)
	if *m == nil {
		*m = map[string]string{}
	}
	if len(*m) < maxNames {
		(*m)[s] = v
	}
	return v
}

func (n *names) district(s string) string { return remember(&n.districts, s, district) }

func (n *names) okrug(s string) string { return remember(&n.okrugs, s, okrug) }

// disabilityGroup is disabilityGroup below, which depends on the value's text alone.
func (n *names) disabilityGroup(v any, mapped bool) string {
	if !mapped {
		return ""
	}
	return remember(&n.groups, text(v), func(s string) string { return disabilityGroup(s, true) })
}

// rowRef says where a row is ("id 17", "row 5"), for a rejection; spelled only when needed.
type rowRef struct {
	word string
	id   any
}

func (r rowRef) String() string { return r.word + " " + text(r.id) }

// build maps one row to a record (all but its position). A rejected row's record carries the
// reasons. The document is written in canonical form (event.Canonical: keys sorted, no spaces), so
// its content hash is the sha256 of its bytes: nothing decodes and re-encodes what was just written.
func (b *builder) build(get getter, ref rowRef, deleted bool) (connectors.Record, error) {
	rec := connectors.Record{EntityType: schemas.EntityResident, Op: event.OpUpsert}
	pseudo, err := b.pseudo.Pseudonym(text(get(b.cols.NationalID)))
	if err != nil {
		where := ref.String()
		data, merr := json.Marshal(rejection{Row: where, Reason: err.Error()})
		if merr != nil {
			return connectors.Record{}, merr
		}
		rec.ExternalID, rec.Data = "rejected-"+strings.ReplaceAll(where, " ", "-"), data
		rec.Reasons = []event.Reason{{Field: "national_id", Message: err.Error()}}
		return rec, nil
	}
	rec.ExternalID = pseudo
	if deleted {
		rec.Op = event.OpDelete
		return rec, nil
	}
	c := b.cols
	r := resident{
		ID: pseudo,
		Address: address{
			Address1:   text(get(c.Address)),
			City:       b.city,
			PostalCode: text(get(c.PostalCode)),
			District:   b.names.district(text(get(c.District))),
			Okrug:      b.names.okrug(text(get(c.Okrug))),
		},
		RegisteredSince: date(get(c.RegisteredSince)),
		BirthDate:       date(get(c.BirthDate)),
		DisabilityGroup: b.names.disabilityGroup(get(c.DisabilityGroup), c.DisabilityGroup != ""),
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
	b.buf, err = r.appendCanonical(b.buf[:0])
	if err != nil {
		return connectors.Record{}, fmt.Errorf("error encoding %s: %w", ref, err)
	}
	rec.Data = bytes.Clone(b.buf)
	sum := sha256.Sum256(rec.Data)
	rec.ContentHash = hex.EncodeToString(sum[:])
	return rec, nil
}

// appendCanonical appends the document as event.Canonical writes it: the members of every object
// in byte order of their keys, no spaces, strings escaped as encoding/json escapes them without
// HTML escaping, numbers as encoding/json writes them. Members left out are those json.Marshal
// leaves out (omitempty).
func (r *resident) appendCanonical(b []byte) ([]byte, error) {
	w := objectWriter{b: append(b, `{"address":`...)}
	a := &r.Address
	w.start()
	w.text("address_1", a.Address1)
	w.member("city")
	w.b, _ = appendString(w.b, a.City)
	w.text("district", a.District)
	w.text("okrug", a.Okrug)
	w.text("postal_code", a.PostalCode)
	w.end()
	w.first = false
	w.text("birth_date", r.BirthDate)
	w.text("disability_group", r.DisabilityGroup)
	if h := r.Household; h != nil {
		w.member("household")
		w.start()
		w.value("children_under_18", h.ChildrenUnder18)
		w.value("children_with_disabilities", h.ChildrenWithDisabilities)
		w.value("members", h.Members)
		w.end()
	}
	w.text("id", r.ID)
	w.value("large_family", r.LargeFamily)
	w.value("low_income", r.LowIncome)
	w.value("pensioner", r.Pensioner)
	w.text("registered_since", r.RegisteredSince)
	return append(w.b, '}'), w.err
}

// objectWriter appends the members of a JSON object.
type objectWriter struct {
	b     []byte
	first bool
	err   error
}

func (w *objectWriter) start() { w.b, w.first = append(w.b, '{'), true }

func (w *objectWriter) end() { w.b = append(w.b, '}') }

// member appends a member's key (plain ASCII) and its colon.
func (w *objectWriter) member(key string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(append(append(w.b, '"'), key...), `":`...)
}

// text appends a string member, left out when empty (omitempty).
func (w *objectWriter) text(key, s string) {
	if s == "" || w.err != nil {
		return
	}
	w.member(key)
	w.b, w.err = appendString(w.b, s)
}

// value appends a member of any type, left out when nil (omitempty).
func (w *objectWriter) value(key string, v any) {
	if v == nil || w.err != nil {
		return
	}
	w.member(key)
	w.b, w.err = appendValue(w.b, v)
}

// appendValue appends a value of the document: the types the mapping functions return.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendString(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	}
	// Anything else (a fractional number) as encoding/json writes it: canonical form keeps
	// numbers as written.
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// appendString appends s quoted as encoding/json quotes it without HTML escaping, which is what
// event.Canonical writes: a plain string as it is, anything else through encoding/json itself.
func appendString(b []byte, s string) ([]byte, error) {
	if plainString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), nil
	}
	if !utf8.ValidString(s) {
		// encoding/json writes each invalid byte as \ufffd, which canonical form decodes and
		// writes as the character itself.
		var fixed strings.Builder
		for _, r := range s {
			fixed.WriteRune(r)
		}
		s = fixed.String()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return b, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// plainString reports whether encoding/json writes s unchanged between quotes: valid UTF-8 without
// quotes, backslashes, control characters, U+2028 or U+2029.
func plainString(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '"' || c == '\\':
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s) && !strings.ContainsRune(s, '\u2028') && !strings.ContainsRune(s, '\u2029')
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
// ДД.ММ.ГГГГ or an RFC 3339 timestamp (its date as written); "" when there is none.
func date(v any) string {
	if t, ok := v.(time.Time); ok {
		return t.Format(time.DateOnly)
	}
	s := text(v)
	if s == "" {
		return ""
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
func disabilityGroup(v any, mapped bool) string {
	if !mapped {
		return ""
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
