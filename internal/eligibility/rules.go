package eligibility

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"go.yaml.in/yaml/v3"

	"socialhub/schemas"
)

// RulesFile is the embedded file of the city's eligibility rules, in schemas/.
const RulesFile = "eligibility_rules.json"

// Selector says which services of the catalog a rule governs: those carrying the taxonomy term
// (and, when keywords are given, whose name holds one of them, case and ё/е aside), and those
// named by id.
type Selector struct {
	TaxonomyTerm string   `json:"taxonomy_term,omitempty" yaml:"taxonomy_term"`
	Keywords     []string `json:"keywords,omitempty" yaml:"keywords"`
	ServiceIDs   []string `json:"service_ids,omitempty" yaml:"service_ids"`
}

// Rule is an eligibility rule: a CEL expression over a resident's facts (see Variables) and the
// Russian explanation a clerk or an operator reads out.
type Rule struct {
	ID          string   `json:"id" yaml:"id"`
	Services    Selector `json:"services" yaml:"services"`
	Expression  string   `json:"rule" yaml:"rule"`
	Explanation string   `json:"explanation" yaml:"explanation"`
	// Disabled, in an override file, removes the embedded rule of the same id.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled"`

	prg        cel.Program
	datedFacts bool // the rule reads age or years_registered, so its decisions age with the calendar
	hash       string
}

// Hash identifies the rule's expression: decisions computed under another hash are recomputed.
func (r *Rule) Hash() string { return r.hash }

// DependsOnDate reports whether the rule's decisions can change with the date alone.
func (r *Rule) DependsOnDate() bool { return r.datedFacts }

// Governs reports whether the rule applies to a service with the id, taxonomy term ids and name.
func (r *Rule) Governs(serviceID string, termIDs []string, name string) bool {
	if slices.Contains(r.Services.ServiceIDs, serviceID) {
		return true
	}
	if r.Services.TaxonomyTerm == "" || !slices.Contains(termIDs, r.Services.TaxonomyTerm) {
		return false
	}
	return r.MatchesName(name)
}

// MatchesName reports whether name holds one of the rule's keywords (true without keywords).
func (r *Rule) MatchesName(name string) bool {
	if len(r.Services.Keywords) == 0 {
		return true
	}
	n := foldText(name)
	return slices.ContainsFunc(r.Services.Keywords, func(k string) bool { return strings.Contains(n, foldText(k)) })
}

func foldText(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "ё", "е")
}

// Variables are the facts a rule may read, with their CEL types.
var Variables = []struct{ Name, Type, Doc string }{
	{"age", "int", "full years as of today, from birth_date"},
	{"years_registered", "int", "full years at the registration address, from registered_since"},
	{"district", "string", "the registration district, e.g. «Марьино»"},
	{"okrug", "string", "the okrug's short name, e.g. «ЮВАО»"},
	{"disability_group", "string", "none, I, II, III or child"},
	{"disabled", "bool", "disability_group is not none"},
	{"pensioner", "bool", "receives a pension"},
	{"household_members", "int", "people in the household, the resident included"},
	{"children_under_18", "int", "children under 18 in the household"},
	{"children_with_disabilities", "int", "children with a disability in the household"},
	{"low_income", "bool", "the household is recognised as low-income"},
	{"large_family", "bool", "the household is a large family"},
}

// datedVariables change with the date alone.
var datedVariables = []string{"age", "years_registered"}

func newEnv(skip []string) (*cel.Env, error) {
	var opts []cel.EnvOption
	for _, v := range Variables {
		if slices.Contains(skip, v.Name) {
			continue
		}
		t := map[string]*cel.Type{"int": cel.IntType, "string": cel.StringType, "bool": cel.BoolType}[v.Type]
		opts = append(opts, cel.Variable(v.Name, t))
	}
	return cel.NewEnv(opts...)
}

// Rules is a validated, compiled set of rules. It is safe for concurrent use.
type Rules struct {
	list []*Rule
	byID map[string]*Rule
	// digest identifies the list (ids and expression hashes): the store keeps it with each
	// resident's decisions, which hold only under the rules they were decided by.
	digest int64
}

// List returns the rules, sorted by id.
func (rs *Rules) List() []*Rule { return rs.list }

// Get returns the rule with the id.
func (rs *Rules) Get(id string) (*Rule, bool) {
	r, ok := rs.byID[id]
	return r, ok
}

var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// DefaultRules returns the embedded rules (schemas/eligibility_rules.json), compiled.
func DefaultRules() (*Rules, error) {
	b, err := fs.ReadFile(schemas.FS(), RulesFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	return LoadRules(Source{Name: "schemas/" + RulesFile, Data: b})
}

// Source is a rules document: a JSON or YAML list of rules, with the name errors cite.
type Source struct {
	Name string
	Data []byte
}

// LoadRules reads the sources in order, a later rule replacing an earlier one of the same id (and
// removing it when disabled), then validates and compiles every rule. All problems are reported
// together, each naming its source and rule; a CEL error carries its position in the expression.
func LoadRules(sources ...Source) (*Rules, error) {
	merged := map[string]*Rule{}
	origin := map[string]string{}
	var errs []error
	for _, src := range sources {
		var list []*Rule
		var err error
		if t := bytes.TrimSpace(src.Data); len(t) > 0 && t[0] == '[' {
			dec := json.NewDecoder(bytes.NewReader(t))
			dec.DisallowUnknownFields()
			err = dec.Decode(&list)
		} else {
			dec := yaml.NewDecoder(bytes.NewReader(src.Data))
			dec.KnownFields(true)
			err = dec.Decode(&list)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: not a list of rules: %w", src.Name, err))
			continue
		}
		for i, r := range list {
			if r == nil || !ruleID.MatchString(r.ID) {
				errs = append(errs, fmt.Errorf("%s: rule %d: id must be lower-case letters, digits, '.', '_' or '-'", src.Name, i+1))
				continue
			}
			if r.Disabled {
				delete(merged, r.ID)
				continue
			}
			merged[r.ID], origin[r.ID] = r, src.Name
		}
	}
	full, err := newEnv(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	undated, err := newEnv(datedVariables)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	rs := &Rules{byID: map[string]*Rule{}}
	for id, r := range merged {
		if err := compileRule(full, undated, r); err != nil {
			errs = append(errs, fmt.Errorf("%s: rule %s: %w", origin[id], id, err))
			continue
		}
		rs.list = append(rs.list, r)
		rs.byID[id] = r
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, fmt.Errorf("%w:\n%w", ErrInvalidRules, errors.Join(errs...))
	}
	slices.SortFunc(rs.list, func(a, b *Rule) int { return strings.Compare(a.ID, b.ID) })
	rs.digest = ruleSetDigest(rs.list)
	return rs, nil
}

// ruleSetDigest is the first 8 bytes, big-endian, of the sha256 of "id:hash" of every rule in id
// order, joined by commas. Migration 003 computes the same in SQL from eligibility_rule_versions.
func ruleSetDigest(list []*Rule) int64 {
	h := sha256.New()
	for i, r := range list {
		if i > 0 {
			h.Write([]byte{','})
		}
		h.Write([]byte(r.ID + ":" + r.hash))
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

func compileRule(full, undated *cel.Env, r *Rule) error {
	r.Expression = strings.TrimSpace(r.Expression)
	var problems []string
	if r.Expression == "" {
		problems = append(problems, "rule (the CEL expression) is required")
	}
	if strings.TrimSpace(r.Explanation) == "" {
		problems = append(problems, "explanation is required")
	}
	if r.Services.TaxonomyTerm == "" && len(r.Services.ServiceIDs) == 0 {
		problems = append(problems, "services needs a taxonomy_term or service_ids")
	}
	if t := r.Services.TaxonomyTerm; t != "" {
		if _, ok := schemas.TaxonomyTermByID(t); !ok {
			problems = append(problems, fmt.Sprintf("services.taxonomy_term %q is not a term of schemas/taxonomy.json", t))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	ast, iss := full.Compile(r.Expression)
	if iss.Err() != nil {
		return fmt.Errorf("does not compile:\n%s", iss.Err())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return fmt.Errorf("yields %s, want bool", ast.OutputType())
	}
	prg, err := full.Program(ast)
	if err != nil {
		return fmt.Errorf("cannot be planned: %w", err)
	}
	// A rule that compiles without the dated variables does not read them.
	_, iss = undated.Compile(r.Expression)
	r.prg, r.datedFacts = prg, iss.Err() != nil
	sum := sha256.Sum256([]byte(r.Expression))
	r.hash = hex.EncodeToString(sum[:])
	return nil
}

// Facts are a resident's facts as rules see them.
type Facts struct {
	Address struct {
		District string `json:"district"`
		Okrug    string `json:"okrug"`
	} `json:"address"`
	RegisteredSince string `json:"registered_since"`
	BirthDate       string `json:"birth_date"`
	Household       struct {
		Members                  int64 `json:"members"`
		ChildrenUnder18          int64 `json:"children_under_18"`
		ChildrenWithDisabilities int64 `json:"children_with_disabilities"`
	} `json:"household"`
	DisabilityGroup string `json:"disability_group"`
	Pensioner       bool   `json:"pensioner"`
	LowIncome       bool   `json:"low_income"`
	LargeFamily     bool   `json:"large_family"`
}

// ParseFacts reads a resident document. Missing fields are zero values: the document was
// validated against schemas/resident.json on its way in.
func ParseFacts(doc []byte) (Facts, error) {
	var f Facts
	if !f.parseFast(doc) {
		f = Facts{}
		if err := json.Unmarshal(doc, &f); err != nil {
			return Facts{}, fmt.Errorf("%w: facts: %w", ErrInvalidRecord, err)
		}
	}
	if f.DisabilityGroup == "" {
		f.DisabilityGroup = "none"
	}
	return f, nil
}

// fullYears returns the full years from date (YYYY-MM-DD) to today; 0 when there is no date.
func fullYears(date string, today time.Time) int64 {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return 0
	}
	y := today.Year() - d.Year()
	if today.Month() < d.Month() || (today.Month() == d.Month() && today.Day() < d.Day()) {
		y--
	}
	return int64(max(y, 0))
}

// Activation returns the variables of the facts as of today.
func (f *Facts) Activation(today time.Time) map[string]any {
	return map[string]any{
		"age": fullYears(f.BirthDate, today), "years_registered": fullYears(f.RegisteredSince, today),
		"district": f.Address.District, "okrug": f.Address.Okrug,
		"disability_group": f.DisabilityGroup, "disabled": f.DisabilityGroup != "none",
		"pensioner": f.Pensioner, "household_members": f.Household.Members,
		"children_under_18": f.Household.ChildrenUnder18, "children_with_disabilities": f.Household.ChildrenWithDisabilities,
		"low_income": f.LowIncome, "large_family": f.LargeFamily,
	}
}

// Eval decides the rule for the variables. A rule that fails at run time (it cannot, having
// compiled to bool over total variables, short of an overflow) decides "not eligible".
func (r *Rule) Eval(vars map[string]any) bool { return r.eval(vars) }

// eval decides the rule for a map of variables or an activation.
func (r *Rule) eval(vars any) bool {
	out, _, err := r.prg.Eval(vars)
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// activation hands rules the variables of the facts as of today, as Activation does, without
// building a map per resident: a rule reads only the variables it names.
type activation struct {
	f     *Facts
	today time.Time
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	f := a.f
	switch name {
	case "age":
		return types.Int(fullYears(f.BirthDate, a.today)), true
	case "years_registered":
		return types.Int(fullYears(f.RegisteredSince, a.today)), true
	case "district":
		return types.String(f.Address.District), true
	case "okrug":
		return types.String(f.Address.Okrug), true
	case "disability_group":
		return types.String(f.DisabilityGroup), true
	case "disabled":
		return types.Bool(f.DisabilityGroup != "none"), true
	case "pensioner":
		return types.Bool(f.Pensioner), true
	case "household_members":
		return types.Int(f.Household.Members), true
	case "children_under_18":
		return types.Int(f.Household.ChildrenUnder18), true
	case "children_with_disabilities":
		return types.Int(f.Household.ChildrenWithDisabilities), true
	case "low_income":
		return types.Bool(f.LowIncome), true
	case "large_family":
		return types.Bool(f.LargeFamily), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }
