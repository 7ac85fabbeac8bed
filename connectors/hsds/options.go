package hsds

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"socialhub/connectors/fetch"
	"socialhub/schemas"
)

// Ways to get fully nested services (Options.FullService).
const (
	// FullAuto passes full=true and fetches /services/{id} for a listed service that still came
	// back without its organization or locations.
	FullAuto = "auto"
	// FullParam passes full=true, the parameter HSDS 3.0 names for /services.
	FullParam = "param"
	// FullFetch fetches /services/{id} for every listed service.
	FullFetch = "fetch"
	// FullNone takes the listing as it comes.
	FullNone = "none"
)

// Options are the kind's options in the config file:
//
//	kind: hsds
//	options:
//	  base_url: https://trud.mos.ru/hsds      # the API root: /services is under it
//	  per_page: 100
//	  full_service: auto      # auto | param | fetch | none
//	  incremental: false      # true: later runs ask modified_after = last complete run - overlap
//	  overlap: 5m
//	  skip_unchanged: true    # a full run over an unchanged feed reads nothing
//	  taxonomy: {"УСЛ-01": employment}   # feed term id, code or name -> city taxonomy term id
//	  timeout: 1m             # fetch.Options, inline
//	  rate_limit: 5
//	  auth: {type: bearer, token_env: TRUD_HSDS_TOKEN}
type Options struct {
	BaseURL string `yaml:"base_url"`
	// PerPage is how many services one page asks for (default 100).
	PerPage     int    `yaml:"per_page"`
	FullService string `yaml:"full_service"`
	// Incremental: after a complete run, ask only for services modified after that run started,
	// minus Overlap (default 5m) for clock skew and changes made while it ran. Incremental runs are
	// not snapshots: nothing is deleted after them.
	Incremental bool          `yaml:"incremental"`
	Overlap     time.Duration `yaml:"overlap"`
	// SkipUnchanged (default true): a full run after a complete one first asks whether any service
	// was modified since (modified_after) and whether total_items moved; when neither, it reads
	// nothing and keeps the previous snapshot. A feed that ignores modified_after is read in full.
	SkipUnchanged *bool `yaml:"skip_unchanged"`
	// Taxonomy maps the feed's taxonomy terms (by id, code or name) to the city taxonomy's term
	// ids. A term that already is a city term id needs no entry; an unmapped one is kept, and the
	// validator dead-letters the service with the reason.
	Taxonomy map[string]string `yaml:"taxonomy"`
	Fetch    fetch.Options     `yaml:",inline"`
}

func (o *Options) setDefaults() {
	if o.PerPage == 0 {
		o.PerPage = 100
	}
	if o.FullService == "" {
		o.FullService = FullAuto
	}
	if o.Overlap == 0 {
		o.Overlap = 5 * time.Minute
	}
	if o.SkipUnchanged == nil {
		t := true
		o.SkipUnchanged = &t
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
}

func (o *Options) validate(getenv func(string) string) error {
	var problems []string
	if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("base_url must be an http(s) URL, got %q", o.BaseURL))
	} else if u.RawQuery != "" {
		problems = append(problems, "base_url must not carry a query")
	}
	if o.PerPage < 1 || o.PerPage > 10000 {
		problems = append(problems, fmt.Sprintf("per_page must be 1..10000, got %d", o.PerPage))
	}
	switch o.FullService {
	case FullAuto, FullParam, FullFetch, FullNone:
	default:
		problems = append(problems, fmt.Sprintf("full_service must be auto, param, fetch or none, got %q", o.FullService))
	}
	if o.Overlap < 0 {
		problems = append(problems, "overlap must not be negative")
	}
	for from, to := range o.Taxonomy {
		if _, ok := schemas.TaxonomyTermByID(to); !ok {
			problems = append(problems, fmt.Sprintf("taxonomy[%q] = %q is not a term of the city taxonomy", from, to))
		}
	}
	if err := o.Fetch.Validate(getenv); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
