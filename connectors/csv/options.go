package csv

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"socialhub/connectors/fetch"
	"socialhub/connectors/servicedoc"
)

// Options are the kind's options in the config file:
//
//	kind: csv
//	options:
//	  url: https://dszn.mos.ru/export/points.csv   # or path: /data/points.csv
//	  encoding: auto          # auto | utf-8 | windows-1251
//	  delimiter: ";"
//	  header: true
//	  city: Москва
//	  columns: {id: Код, organization_name: Учреждение, service_name: Услуга, ...}
//	  timeout: 1m             # fetch.Options, inline
//	  rate_limit: 5
//	  auth: {type: bearer, token_env: DSZN_TOKEN}
type Options struct {
	// Path is a local file; URL an http(s) address. Exactly one is set.
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
	// Encoding: "auto" (default: UTF-8 if the bytes are valid UTF-8, otherwise Windows-1251),
	// "utf-8" or "windows-1251".
	Encoding string `yaml:"encoding"`
	// Delimiter is one character; default ";".
	Delimiter string `yaml:"delimiter"`
	// Header says the first row names the columns (default true). Without a header, columns are
	// mapped by their 1-based number written as a string ("1", "2", ...).
	Header *bool `yaml:"header"`
	// Columns maps the hub's fields to the file's column names (or numbers, without a header).
	Columns Columns `yaml:"columns"`
	// City fills address.city and state_province (default «Москва»).
	City string `yaml:"city"`
	// Fetch: timeout (default 1m), rate_limit, and auth with secrets from the environment.
	Fetch fetch.Options `yaml:",inline"`
}

// Columns maps each field of the record document to a column. Its fields are those of
// servicedoc.Fields, holding column names instead of values; organization_website is unmapped by
// default, because a department's list gives each service's page, not its provider's.
type Columns = servicedoc.Fields

// DefaultColumns is the layout of the city's department service-point export (and of the demo
// generator's file).
var DefaultColumns = Columns{
	ID: "Код", OrganizationID: "Код учреждения", OrganizationName: "Учреждение", INN: "ИНН", OGRN: "ОГРН",
	ServiceName: "Услуга", ServiceDescription: "Описание", Category: "Категория",
	LocationName: "Точка обслуживания", Address: "Адрес", District: "Район", Okrug: "Округ",
	PostalCode: "Индекс", Latitude: "Широта", Longitude: "Долгота", Phone: "Телефон", Email: "Email",
	Website: "Сайт", Hours: "Часы работы",
}

func (o *Options) setDefaults() {
	if o.Encoding == "" {
		o.Encoding = fetch.EncodingAuto
	}
	if o.Delimiter == "" {
		o.Delimiter = ";"
	}
	if o.Header == nil {
		t := true
		o.Header = &t
	}
	if o.Columns == (Columns{}) {
		o.Columns = DefaultColumns
	}
	if o.City == "" {
		o.City = servicedoc.DefaultCity
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
	if err := fetch.CheckEncoding(o.Encoding); err != nil {
		problems = append(problems, err.Error())
	}
	if utf8.RuneCountInString(o.Delimiter) != 1 {
		problems = append(problems, fmt.Sprintf("delimiter must be one character, got %q", o.Delimiter))
	}
	if o.Columns.ID == "" {
		problems = append(problems, "columns.id is required")
	}
	if o.Columns.ServiceName == "" || o.Columns.OrganizationName == "" {
		problems = append(problems, "columns.service_name and columns.organization_name are required")
	}
	if err := o.Fetch.Validate(getenv); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
