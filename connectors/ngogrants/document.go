package ngogrants

import (
	"encoding/json"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
	"unicode"

	"socialhub/internal/event"
	"socialhub/internal/normalize"
)

// CurrencyRUB is the currency of every amount in the lists.
const CurrencyRUB = "RUB"

// The record document: an HSDS organization with its identifiers and this row's grant. Struct order
// fixes the JSON key order, so the same row always gives the same bytes.
type organization struct {
	ID                      string       `json:"id"`
	Name                    string       `json:"name"`
	OrganizationIdentifiers []identifier `json:"organization_identifiers,omitempty"`
	Funding                 []funding    `json:"funding"`
}

type identifier struct {
	ID               string `json:"id"`
	IdentifierScheme string `json:"identifier_scheme"`
	IdentifierType   string `json:"identifier_type"`
	Identifier       string `json:"identifier"`
}

type funding struct {
	ID                string `json:"id"`
	OrganizationID    string `json:"organization_id"`
	Source            string `json:"source,omitempty"`
	Amount            string `json:"amount,omitempty"`
	Currency          string `json:"currency,omitempty"`
	ApplicationNumber string `json:"application_number"`
	ProjectTitle      string `json:"project_title,omitempty"`
	Operator          string `json:"operator,omitempty"`
	StartDate         string `json:"start_date,omitempty"`
	EndDate           string `json:"end_date,omitempty"`
	Status            string `json:"status,omitempty"`
	Region            string `json:"region,omitempty"`
}

// row is one list row with its cells mapped to fields, cleaned.
type row struct {
	number                                            int // 1-based data row number
	applicationNumber, inn, ogrn, name, region, title string
	amount, startDate, endDate, status                string
}

// clean makes a cell readable: HTML entities decoded (lists are often pasted from web pages:
// &quot;, &laquo;), line breaks, tabs and runs of (non-breaking) spaces collapsed to one space.
func clean(s string) string {
	if strings.IndexByte(s, '&') >= 0 {
		s = html.UnescapeString(s)
	}
	if !needsCollapse(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || r == '\u00a0' || r == '\u202f' || r == '\ufeff' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// needsCollapse tells whether clean has spaces to fix, so that clean cells cost no allocation.
func needsCollapse(s string) bool {
	prevSpace := true // a leading space needs trimming
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if prevSpace {
				return true
			}
			prevSpace = true
		case c < ' ' || c >= 0x80:
			if c < ' ' || c == 0xc2 || c == 0xe2 || c == 0xef {
				return true // control characters, NBSP, narrow NBSP and BOM start with these
			}
			prevSpace = false
		default:
			prevSpace = false
		}
	}
	return prevSpace && len(s) > 0
}

// excelEpoch is day 0 of Excel's 1900 date system as it counts from day 61 on (it believes 1900
// was a leap year, so earlier serials are one day off; no grant list goes back to 1900).
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// Excel serial numbers accepted as dates: 1 Jan 1990 to 31 Dec 2100. Outside, a number is not
// taken for a date.
const (
	minSerial = 32874
	maxSerial = 73415
)

var dateLayouts = []string{"02.01.2006", "2.1.2006", "2006-01-02", "02.01.06", "02/01/2006", "2006-01-02T15:04:05", "02.01.2006 15:04:05", "02.01.2006 15:04", "2006-01-02 15:04:05"}

// parseDate reads «01.03.2024», «2024-03-01», «01.03.2024 0:00:00» or an Excel serial date and
// returns the ISO date.
func parseDate(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if isNumber(s) {
		n, _ := strconv.ParseFloat(s, 64)
		if n < minSerial || n > maxSerial {
			return "", fmt.Errorf("%q is a number, not a date (as an Excel date it would fall outside 1990–2100)", s)
		}
		return excelEpoch.AddDate(0, 0, int(n)).Format(time.DateOnly), nil
	}
	t := s
	// «01.03.2024 0:00:00» — the hour of a date column carries nothing.
	if i := strings.IndexByte(t, ' '); i > 0 && strings.Contains(t[i:], ":") {
		t = t[:i]
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, " г."), "г.")
	for _, layout := range dateLayouts {
		if d, err := time.Parse(layout, t); err == nil {
			return d.Format(time.DateOnly), nil
		}
	}
	return "", fmt.Errorf("%q is not a date; write it as 01.03.2024 or 2024-03-01", s)
}

// isNumber tells an Excel serial date («45352», «45352.5»: a time of day) from a written one.
func isNumber(s string) bool {
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 6 || strings.Trim(intPart, "0123456789") != "" {
		return false
	}
	return strings.Trim(frac, "0123456789") == ""
}

// plainNumber undoes a spreadsheet's exponent notation of an integer («7.707083893E+9») exactly,
// from the digits, so an identifier stored as a number reads as its digits; anything else is
// returned unchanged for the checksum functions to judge.
func plainNumber(s string) string {
	e := strings.IndexAny(s, "Ee")
	if e < 0 {
		return strings.TrimSuffix(s, ".0")
	}
	mant, exp := s[:e], strings.TrimPrefix(s[e+1:], "+")
	n, err := strconv.Atoi(exp)
	if err != nil || n < 0 || n > 20 {
		return s
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" || len(frac) > n || strings.Trim(intPart+frac, "0123456789") != "" {
		return s
	}
	return intPart + frac + strings.Repeat("0", n-len(frac))
}

// build turns a row into the record document, or the reasons it cannot be one. Nothing is guessed:
// a failed checksum, an unreadable amount or date rejects the row.
func build(r *row, operator string) ([]byte, []event.Reason) {
	var reasons []event.Reason
	reject := func(field, format string, args ...any) {
		reasons = append(reasons, event.Reason{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if r.applicationNumber == "" {
		reject("funding.0.application_number", "the application number is empty: it is the record's id")
	}
	org := organization{Name: r.name}
	var innID, ogrnID identifier
	if r.inn == "" {
		reject("organization_identifiers.0.identifier", "ИНН is empty: the organization cannot be identified")
	} else if inn, err := normalize.INN(plainNumber(r.inn)); err != nil {
		reject("organization_identifiers.0.identifier", "%v", err)
	} else {
		org.ID = "inn-" + inn
		innID = identifier{ID: org.ID + "/INN", IdentifierScheme: "INN", IdentifierType: "ИНН", Identifier: inn}
	}
	if r.ogrn != "" {
		num := plainNumber(r.ogrn)
		scheme, kind, check := "OGRN", "ОГРН", normalize.OGRN
		if digits(num) == 15 {
			scheme, kind, check = "OGRNIP", "ОГРНИП", normalize.OGRNIP
		}
		if v, err := check(num); err != nil {
			reject("organization_identifiers.1.identifier", "%v", err)
		} else {
			ogrnID = identifier{ID: org.ID + "/" + scheme, IdentifierScheme: scheme, IdentifierType: kind, Identifier: v}
		}
	}
	f := funding{
		ID: r.applicationNumber, OrganizationID: org.ID, ApplicationNumber: r.applicationNumber,
		ProjectTitle: r.title, Operator: operator, Status: r.status, Region: r.region,
	}
	if r.amount != "" {
		a, err := normalize.Amount(r.amount)
		if err != nil {
			reject("funding.0.amount", "%v", err)
		}
		f.Amount, f.Currency = a, CurrencyRUB
	}
	var err error
	if f.StartDate, err = parseDate(r.startDate); err != nil {
		reject("funding.0.start_date", "start date %v", err)
	}
	if f.EndDate, err = parseDate(r.endDate); err != nil {
		reject("funding.0.end_date", "end date %v", err)
	}
	if f.StartDate != "" && f.EndDate != "" && f.EndDate < f.StartDate {
		reject("funding.0.end_date", "the project ends (%s) before it starts (%s)", f.EndDate, f.StartDate)
	}
	if len(reasons) > 0 {
		return nil, reasons
	}
	switch {
	case operator != "" && r.title != "":
		f.Source = operator + ": " + r.title
	case operator != "":
		f.Source = operator
	}
	org.OrganizationIdentifiers = append(org.OrganizationIdentifiers, innID)
	if ogrnID.Identifier != "" {
		org.OrganizationIdentifiers = append(org.OrganizationIdentifiers, ogrnID)
	}
	org.Funding = []funding{f}
	b, err := marshal(org)
	if err != nil {
		return nil, []event.Reason{{Field: "(root)", Message: "cannot encode the row: " + err.Error()}}
	}
	return b, nil
}

// rawRow is what a rejected row holds: its cells as read, so an operator sees what was wrong.
func rawRow(r *row) []byte {
	b, _ := marshal(struct {
		Row               int    `json:"row"`
		ApplicationNumber string `json:"application_number"`
		INN               string `json:"inn"`
		OGRN              string `json:"ogrn,omitempty"`
		OrganizationName  string `json:"organization_name"`
		Region            string `json:"region,omitempty"`
		ProjectTitle      string `json:"project_title,omitempty"`
		Amount            string `json:"amount,omitempty"`
		StartDate         string `json:"start_date,omitempty"`
		EndDate           string `json:"end_date,omitempty"`
		Status            string `json:"status,omitempty"`
	}{r.number, r.applicationNumber, r.inn, r.ogrn, r.name, r.region, r.title, r.amount, r.startDate, r.endDate, r.status})
	return b
}

func digits(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}

// marshal encodes without HTML escaping: names keep their quotes and «» as written.
func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
