package httpjson

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/go-openapi/jsonpointer"

	"socialhub/connectors/fetch"
	"socialhub/connectors/servicedoc"
)

// Pagination types.
const (
	PagingNone   = "none"
	PagingPage   = "page"
	PagingOffset = "offset"
	PagingCursor = "cursor"
	PagingLink   = "link"
)

// Options are the kind's options in the config file:
//
//	kind: httpjson
//	options:
//	  url: https://ngo.example.ru/api/services?region=moscow
//	  items: /data                  # JSON pointer to the page's array of items; "" for a top-level array
//	  fields:                       # servicedoc field -> JSON pointer into an item
//	    id: /id
//	    service_name: /title
//	    organization_name: /provider/name
//	    phone: /contacts/0/phone
//	  pagination:
//	    type: cursor                # none | page | offset | cursor | link
//	    cursor_pointer: /meta/next  # cursor: where the next token is in the page
//	    cursor_param: cursor
//	    size_param: limit
//	    size: 100
//	  full_list: true               # every complete run is the whole list (a snapshot)
//	  max_pages: 10000
//	  timeout: 1m                   # fetch.Options, inline
//	  rate_limit: 5
//	  auth: {type: basic, user_env: NGO_USER, password_env: NGO_PASSWORD}
type Options struct {
	URL   string `yaml:"url"`
	Items string `yaml:"items"`
	// Fields maps the names of servicedoc.Fields to JSON pointers into an item; id,
	// service_name and organization_name are required.
	Fields     map[string]string `yaml:"fields"`
	Pagination Pagination        `yaml:"pagination"`
	// City fills address.city and state_province (default «Москва»).
	City string `yaml:"city"`
	// FullList (default true) says every complete run reads the API's whole list, so the run is a
	// snapshot; false for an API that lists only some items (recent changes, a search).
	FullList *bool `yaml:"full_list"`
	// MaxPages bounds one run (default 10000), so an API whose paging never ends cannot hold the
	// source forever.
	MaxPages int           `yaml:"max_pages"`
	Fetch    fetch.Options `yaml:",inline"`
}

// Pagination says how to ask for the next page.
type Pagination struct {
	Type string `yaml:"type"`
	// page: PageParam (default "page") from Start (default 1), SizeParam (default "per_page").
	PageParam string `yaml:"page_param"`
	Start     *int   `yaml:"start"`
	// SizeParam and Size: how many items one page asks for (Size default 100; for offset the
	// size goes in LimitParam). An empty SizeParam with type cursor or link sends no size.
	SizeParam string `yaml:"size_param"`
	Size      int    `yaml:"size"`
	// offset: OffsetParam (default "offset") and LimitParam (default "limit").
	OffsetParam string `yaml:"offset_param"`
	LimitParam  string `yaml:"limit_param"`
	// cursor: the next token at CursorPointer in the page, sent as CursorParam (default
	// "cursor"); no token (absent, null or "") ends the list.
	CursorPointer string `yaml:"cursor_pointer"`
	CursorParam   string `yaml:"cursor_param"`
}

func (o *Options) setDefaults() {
	p := &o.Pagination
	if p.Type == "" {
		p.Type = PagingNone
	}
	if p.Size == 0 {
		p.Size = 100
	}
	switch p.Type {
	case PagingPage:
		if p.PageParam == "" {
			p.PageParam = "page"
		}
		if p.SizeParam == "" {
			p.SizeParam = "per_page"
		}
		if p.Start == nil {
			one := 1
			p.Start = &one
		}
	case PagingOffset:
		if p.OffsetParam == "" {
			p.OffsetParam = "offset"
		}
		if p.LimitParam == "" {
			p.LimitParam = "limit"
		}
	case PagingCursor:
		if p.CursorParam == "" {
			p.CursorParam = "cursor"
		}
	}
	if o.City == "" {
		o.City = servicedoc.DefaultCity
	}
	if o.FullList == nil {
		t := true
		o.FullList = &t
	}
	if o.MaxPages == 0 {
		o.MaxPages = 10000
	}
}

// field is one mapped field with its compiled pointer.
type field struct {
	name    string
	pointer string
	ptr     jsonpointer.Pointer
}

// compile checks the options and compiles the pointers.
func (o *Options) compile(getenv func(string) string) (jsonpointer.Pointer, []field, error) {
	var problems []string
	if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("url must be an http(s) URL, got %q", o.URL))
	}
	items, err := jsonpointer.New(o.Items)
	if err != nil {
		problems = append(problems, fmt.Sprintf("items %q is not a JSON pointer: %v", o.Items, err))
	}
	known := map[string]bool{}
	for _, n := range servicedoc.Names() {
		known[n] = true
	}
	var fields []field
	for _, name := range servicedoc.Names() {
		p, ok := o.Fields[name]
		if !ok {
			continue
		}
		ptr, err := jsonpointer.New(p)
		if err != nil || p == "" {
			problems = append(problems, fmt.Sprintf("fields.%s = %q is not a JSON pointer into an item (like /title)", name, p))
			continue
		}
		fields = append(fields, field{name: name, pointer: p, ptr: ptr})
	}
	var unknown []string
	for name := range o.Fields {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		problems = append(problems, fmt.Sprintf("fields has unknown names %s (known: %s)", strings.Join(unknown, ", "), strings.Join(servicedoc.Names(), ", ")))
	}
	for _, req := range []string{"id", "service_name", "organization_name"} {
		if o.Fields[req] == "" {
			problems = append(problems, "fields."+req+" is required")
		}
	}
	p := o.Pagination
	switch p.Type {
	case PagingNone, PagingLink:
	case PagingPage:
		if p.Start != nil && *p.Start < 0 {
			problems = append(problems, "pagination.start must not be negative")
		}
	case PagingOffset:
	case PagingCursor:
		if _, err := jsonpointer.New(p.CursorPointer); err != nil || p.CursorPointer == "" {
			problems = append(problems, fmt.Sprintf("pagination.cursor_pointer %q must be a JSON pointer into the page", p.CursorPointer))
		}
	default:
		problems = append(problems, fmt.Sprintf("pagination.type must be none, page, offset, cursor or link, got %q", p.Type))
	}
	if p.Size < 1 {
		problems = append(problems, "pagination.size must be positive")
	}
	if o.MaxPages < 1 {
		problems = append(problems, "max_pages must be positive")
	}
	if err := o.Fetch.Validate(getenv); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return jsonpointer.Pointer{}, nil, errors.New(strings.Join(problems, "; "))
	}
	return items, fields, nil
}
