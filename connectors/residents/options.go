package residents

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"socialhub/connectors/fetch"
)

// Modes.
const (
	ModeTable    = "table"
	ModeSnapshot = "snapshot"
)

// Snapshot formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// DefaultPageSize is how many rows one query reads in table mode.
const DefaultPageSize = 5000

// unmapped, as a column name, says the registry has no such column.
const unmapped = "-"

// Options are the kind's options in the config file.
type Options struct {
	// Mode is "table" or "snapshot".
	Mode string `yaml:"mode"`

	// Table mode. The DSN is given directly (dsn) or, better, in an environment variable named by
	// dsn_env, so the registry's password stays out of the config file.
	DSN    string `yaml:"dsn"`
	DSNEnv string `yaml:"dsn_env"`
	// Table is the table or view, optionally schema-qualified ("registry.residents").
	Table string `yaml:"table"`
	// PageSize is how many rows one query reads (default 5000).
	PageSize int `yaml:"page_size"`
	// DeletedColumn names a boolean column; a row where it is true becomes a delete.
	DeletedColumn string `yaml:"deleted_column"`

	// Snapshot mode: exactly one of path and url; format csv or jsonl.
	Path   string `yaml:"path"`
	URL    string `yaml:"url"`
	Format string `yaml:"format"`
	// CSV only: delimiter (default ";"), encoding (auto, utf-8 or windows-1251), header (default
	// true; without one, columns are mapped by their 1-based number, "1", "2", ...).
	Delimiter string `yaml:"delimiter"`
	Encoding  string `yaml:"encoding"`
	Header    *bool  `yaml:"header"`
	// HTTP options for url: timeout, rate_limit, auth.
	fetch.Options `yaml:",inline"`

	// Columns maps the resident's fields to the registry's columns; unset fields keep their
	// default, "-" says the registry has no such column.
	Columns Columns `yaml:"columns"`
	// City fills address.city (default «Москва»).
	City string `yaml:"city"`
}

// Columns maps each field to a column of the table, a CSV header or a JSONL key.
type Columns struct {
	// ID and UpdatedAt are the table's keyset cursor (table mode only).
	ID        string `yaml:"id"`
	UpdatedAt string `yaml:"updated_at"`

	NationalID               string `yaml:"national_id"`
	Address                  string `yaml:"address"`
	District                 string `yaml:"district"`
	Okrug                    string `yaml:"okrug"`
	PostalCode               string `yaml:"postal_code"`
	RegisteredSince          string `yaml:"registered_since"`
	BirthDate                string `yaml:"birth_date"`
	HouseholdMembers         string `yaml:"household_members"`
	ChildrenUnder18          string `yaml:"children_under_18"`
	ChildrenWithDisabilities string `yaml:"children_with_disabilities"`
	DisabilityGroup          string `yaml:"disability_group"`
	Pensioner                string `yaml:"pensioner"`
	LowIncome                string `yaml:"low_income"`
	LargeFamily              string `yaml:"large_family"`
}

// DefaultColumns is the layout of the demo registry (internal/demo): its table and its exports.
var DefaultColumns = Columns{
	ID: "id", UpdatedAt: "updated_at", NationalID: "snils", Address: "address", District: "district",
	Okrug: "okrug", PostalCode: "postal_code", RegisteredSince: "registered_since", BirthDate: "birth_date",
	HouseholdMembers: "household_members", ChildrenUnder18: "children_under_18",
	ChildrenWithDisabilities: "children_with_disabilities", DisabilityGroup: "disability_group",
	Pensioner: "pensioner", LowIncome: "low_income", LargeFamily: "large_family",
}

// field is one mapped field: its option name and a pointer to its column.
type field struct {
	name string
	col  *string
}

func (c *Columns) fields() []field {
	return []field{
		{"id", &c.ID}, {"updated_at", &c.UpdatedAt}, {"national_id", &c.NationalID}, {"address", &c.Address},
		{"district", &c.District}, {"okrug", &c.Okrug}, {"postal_code", &c.PostalCode},
		{"registered_since", &c.RegisteredSince}, {"birth_date", &c.BirthDate},
		{"household_members", &c.HouseholdMembers}, {"children_under_18", &c.ChildrenUnder18},
		{"children_with_disabilities", &c.ChildrenWithDisabilities}, {"disability_group", &c.DisabilityGroup},
		{"pensioner", &c.Pensioner}, {"low_income", &c.LowIncome}, {"large_family", &c.LargeFamily},
	}
}

func (o *Options) setDefaults() {
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Delimiter == "" {
		o.Delimiter = ";"
	}
	if o.Encoding == "" {
		o.Encoding = fetch.EncodingAuto
	}
	if o.Header == nil {
		t := true
		o.Header = &t
	}
	if o.City == "" {
		o.City = "Москва"
	}
	def := DefaultColumns
	dfs := def.fields()
	for i, f := range o.Columns.fields() {
		switch strings.TrimSpace(*f.col) {
		case "":
			*f.col = *dfs[i].col
		case unmapped:
			*f.col = ""
		}
	}
}

func (o *Options) validate(getenv func(string) string) error {
	var problems []string
	switch o.Mode {
	case ModeTable:
		switch {
		case o.DSN != "" && o.DSNEnv != "":
			problems = append(problems, "set dsn or dsn_env, not both")
		case o.DSN == "" && o.DSNEnv == "":
			problems = append(problems, "dsn_env (the name of the variable holding the registry database's DSN) or dsn is required")
		case o.DSNEnv != "" && getenv(o.DSNEnv) == "":
			problems = append(problems, fmt.Sprintf("dsn_env: the environment variable %s is not set", o.DSNEnv))
		}
		if strings.TrimSpace(o.Table) == "" {
			problems = append(problems, "table is required")
		} else if len(strings.Split(o.Table, ".")) > 2 {
			problems = append(problems, fmt.Sprintf("table must be name or schema.name, got %q", o.Table))
		}
		if o.PageSize < 1 {
			problems = append(problems, fmt.Sprintf("page_size must be positive, got %d", o.PageSize))
		}
		if o.Columns.ID == "" || o.Columns.UpdatedAt == "" {
			problems = append(problems, "columns.id and columns.updated_at are required in table mode: they are the cursor")
		}
		if o.Path != "" || o.URL != "" || o.Format != "" {
			problems = append(problems, "path, url and format belong to snapshot mode")
		}
	case ModeSnapshot:
		if (o.Path == "") == (o.URL == "") {
			problems = append(problems, "exactly one of path and url must be set")
		}
		if o.URL != "" && !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
			problems = append(problems, fmt.Sprintf("url must be http:// or https://, got %q", o.URL))
		}
		switch o.Format {
		case FormatCSV, FormatJSONL:
		default:
			problems = append(problems, fmt.Sprintf("format must be csv or jsonl, got %q", o.Format))
		}
		if err := fetch.CheckEncoding(o.Encoding); err != nil {
			problems = append(problems, err.Error())
		}
		if utf8.RuneCountInString(o.Delimiter) != 1 {
			problems = append(problems, fmt.Sprintf("delimiter must be one character, got %q", o.Delimiter))
		}
		if o.DSN != "" || o.DSNEnv != "" || o.Table != "" || o.DeletedColumn != "" {
			problems = append(problems, "dsn, dsn_env, table and deleted_column belong to table mode")
		}
		if err := o.Options.Validate(getenv); err != nil {
			problems = append(problems, err.Error())
		}
	default:
		problems = append(problems, fmt.Sprintf("mode must be table or snapshot, got %q", o.Mode))
	}
	if o.Columns.NationalID == "" {
		problems = append(problems, "columns.national_id is required: residents are keyed by it")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
