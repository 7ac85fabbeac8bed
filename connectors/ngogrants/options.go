package ngogrants

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"socialhub/connectors/fetch"
)

// Formats of the list.
const (
	FormatAuto = "auto"
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// Options are the kind's options in the config file.
type Options struct {
	// Path is a local file; URL an http(s) address. Exactly one is set.
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
	// Fetch: timeout, rate_limit and auth of the HTTP fetch.
	fetch.Options `yaml:",inline"`
	// Format is auto (default: XLSX when the content is a zip archive, CSV otherwise), csv or xlsx.
	Format string `yaml:"format"`
	// Sheet is the XLSX sheet to read (default: the first).
	Sheet string `yaml:"sheet"`
	// Delimiter is the CSV delimiter, one character; by default the one of ";", "," and tab that
	// the first line uses most.
	Delimiter string `yaml:"delimiter"`
	// Encoding of a CSV: auto (default), utf-8 or windows-1251.
	Encoding string `yaml:"encoding"`
	// Header says the first row names the columns (default true). Without one, columns are given
	// by their 1-based number ("1", "2", ...).
	Header *bool `yaml:"header"`
	// Columns maps the hub's fields to the list's column names (or numbers).
	Columns Columns `yaml:"columns"`
	// Operator is the grant operator's name, put in every funding record.
	Operator string `yaml:"operator"`
	// Regions, when set, keeps only the rows of these regions (compared without case, extra spaces
	// and a leading «г.»); the others are skipped, not rejected: they are not the city's.
	Regions []string `yaml:"regions"`
}

// Columns maps each field to a column; an empty one is not read.
type Columns struct {
	ApplicationNumber string `yaml:"application_number"`
	INN               string `yaml:"inn"`
	OGRN              string `yaml:"ogrn"`
	OrganizationName  string `yaml:"organization_name"`
	Region            string `yaml:"region"`
	ProjectTitle      string `yaml:"project_title"`
	Amount            string `yaml:"amount"`
	StartDate         string `yaml:"start_date"`
	EndDate           string `yaml:"end_date"`
	Status            string `yaml:"status"`
}

// DefaultColumns is the header of the operators' published lists (and of the demo files).
var DefaultColumns = Columns{
	ApplicationNumber: "Номер заявки",
	INN:               "ИНН",
	OGRN:              "ОГРН",
	OrganizationName:  "Наименование организации",
	Region:            "Регион",
	ProjectTitle:      "Название проекта",
	Amount:            "Сумма гранта",
	StartDate:         "Дата начала",
	EndDate:           "Дата окончания",
	Status:            "Статус",
}

// fields lists the mapping as (option name, column) pairs, in a fixed order.
func (c Columns) fields() []struct{ name, column string } {
	return []struct{ name, column string }{
		{"application_number", c.ApplicationNumber}, {"inn", c.INN}, {"ogrn", c.OGRN},
		{"organization_name", c.OrganizationName}, {"region", c.Region}, {"project_title", c.ProjectTitle},
		{"amount", c.Amount}, {"start_date", c.StartDate}, {"end_date", c.EndDate}, {"status", c.Status},
	}
}

func (o *Options) setDefaults() {
	if o.Format == "" {
		o.Format = FormatAuto
	}
	if o.Encoding == "" {
		o.Encoding = fetch.EncodingAuto
	}
	if o.Header == nil {
		t := true
		o.Header = &t
	}
	if o.Columns == (Columns{}) {
		o.Columns = DefaultColumns
	}
}

func (o *Options) validate(getenv func(string) string) error {
	var problems []string
	if (o.Path == "") == (o.URL == "") {
		problems = append(problems, "exactly one of path and url must be set")
	}
	if o.URL != "" && !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		problems = append(problems, fmt.Sprintf("url must be http:// or https://, got %q", o.URL))
	}
	if err := o.Options.Validate(getenv); err != nil {
		problems = append(problems, err.Error())
	}
	switch o.Format {
	case FormatAuto, FormatCSV, FormatXLSX:
	default:
		problems = append(problems, fmt.Sprintf("format must be auto, csv or xlsx, got %q", o.Format))
	}
	if err := fetch.CheckEncoding(o.Encoding); err != nil {
		problems = append(problems, err.Error())
	}
	if o.Delimiter != "" && (utf8.RuneCountInString(o.Delimiter) != 1 || o.Delimiter == "\"" || o.Delimiter == "\n" || o.Delimiter == "\r") {
		problems = append(problems, fmt.Sprintf("delimiter must be one character other than a quote or a line break, got %q", o.Delimiter))
	}
	c := o.Columns
	if c.ApplicationNumber == "" || c.INN == "" || c.OrganizationName == "" {
		problems = append(problems, "columns.application_number, columns.inn and columns.organization_name are required")
	}
	if !*o.Header {
		for _, f := range c.fields() {
			if f.column == "" {
				continue
			}
			if n, err := strconv.Atoi(f.column); err != nil || n < 1 {
				problems = append(problems, fmt.Sprintf("columns.%s must be a column number from 1 when header is false, got %q", f.name, f.column))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
