package csv

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Options are the kind's options in the config file.
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
	// Timeout bounds an HTTP fetch (default 1m).
	Timeout time.Duration `yaml:"timeout"`
}

// Columns maps each field of the record document to a column.
type Columns struct {
	ID                 string `yaml:"id"`
	OrganizationID     string `yaml:"organization_id"`
	OrganizationName   string `yaml:"organization_name"`
	INN                string `yaml:"inn"`
	OGRN               string `yaml:"ogrn"`
	ServiceName        string `yaml:"service_name"`
	ServiceDescription string `yaml:"service_description"`
	Category           string `yaml:"category"`
	LocationName       string `yaml:"location_name"`
	Address            string `yaml:"address"`
	District           string `yaml:"district"`
	Okrug              string `yaml:"okrug"`
	PostalCode         string `yaml:"postal_code"`
	Latitude           string `yaml:"latitude"`
	Longitude          string `yaml:"longitude"`
	Phone              string `yaml:"phone"`
	Email              string `yaml:"email"`
	Website            string `yaml:"website"` // the service's page
	Hours              string `yaml:"hours"`
	// OrganizationWebsite is the organization's own site; unmapped by default, because a
	// department's list gives each service's page, not its provider's.
	OrganizationWebsite string `yaml:"organization_website"`
}

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
		o.Encoding = "auto"
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
		o.City = "Москва"
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
}

func (o *Options) validate() error {
	var problems []string
	if (o.Path == "") == (o.URL == "") {
		problems = append(problems, "exactly one of path and url must be set")
	}
	if o.URL != "" && !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		problems = append(problems, fmt.Sprintf("url must be http:// or https://, got %q", o.URL))
	}
	switch strings.ToLower(o.Encoding) {
	case "auto", "utf-8", "utf8", "windows-1251", "cp1251":
	default:
		problems = append(problems, fmt.Sprintf("encoding must be auto, utf-8 or windows-1251, got %q", o.Encoding))
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
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
