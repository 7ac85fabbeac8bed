package schemas

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/xeipuuv/gojsonschema"

	"socialhub/internal/rawjson"
)

// rootField names the document itself in a Violation.
const rootField = "(root)"

// Violation is one reason a document does not conform to the profile.
type Violation struct {
	// Field is the JSON path of the offending value, like "service_at_locations.0.location.latitude",
	// or "(root)" for the document itself. A missing required property is reported at its own path.
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Validator validates documents against the profile, in any of its versions. Its schemas are
// compiled once, by NewValidator; it is safe for concurrent use.
type Validator struct {
	schemas map[versioned]*gojsonschema.Schema
}

type versioned struct {
	entity  string
	version int
}

// NewValidator compiles the schema of every entity in every version.
func NewValidator() (*Validator, error) {
	docs, err := versionDocs()
	if err != nil {
		return nil, err
	}
	v := &Validator{schemas: make(map[versioned]*gojsonschema.Schema, len(entities)*CurrentVersion)}
	for version := 1; version <= CurrentVersion; version++ {
		loaders := make([]gojsonschema.JSONLoader, 0, len(profileFiles))
		for _, name := range profileFiles {
			loaders = append(loaders, gojsonschema.NewBytesLoader(docs[version-1][name]))
		}
		for _, entity := range entities {
			// A fresh loader per entity: Compile takes the pool's documents but keeps per-root state.
			sl := gojsonschema.NewSchemaLoader()
			sl.Draft = gojsonschema.Draft7
			sl.AutoDetect = false
			if err := sl.AddSchemas(loaders...); err != nil {
				return nil, fmt.Errorf("error adding schemas of version %d: %w", version, err)
			}
			s, err := sl.Compile(gojsonschema.NewReferenceLoader(SchemaIDVersion(entity, version)))
			if err != nil {
				return nil, fmt.Errorf("error compiling schema %s version %d: %w", entity, version, err)
			}
			v.schemas[versioned{entity, version}] = s
		}
	}
	return v, nil
}

// Validate checks data, a JSON document of entity, against the current version of the profile. It
// returns nil, nil when the document is valid, and the violations sorted by field otherwise; several
// failures of one field make one violation. Malformed JSON is a violation of "(root)", not an
// error: the error is only ErrUnknownEntity.
func (v *Validator) Validate(entity string, data []byte) ([]Violation, error) {
	return v.ValidateVersion(entity, CurrentVersion, data)
}

// ValidateVersion is Validate against version of the profile; an unknown version is
// ErrUnknownSchema.
func (v *Validator) ValidateVersion(entity string, version int, data []byte) ([]Violation, error) {
	s, err := v.schema(entity, version)
	if err != nil {
		return nil, err
	}
	// The bytes loader decodes the first JSON value only and ignores what follows, so check the
	// whole input first.
	if !rawjson.Valid(data) {
		return []Violation{{Field: rootField, Message: "invalid JSON: " + jsonError(data)}}, nil
	}
	res, err := s.Validate(gojsonschema.NewBytesLoader(data))
	if err != nil {
		return []Violation{{Field: rootField, Message: "invalid JSON: " + err.Error()}}, nil
	}
	if res.Valid() {
		return nil, nil
	}
	return violations(res.Errors()), nil
}

// ValidateValue is ValidateVersion on a document already decoded, as encoding/json decodes into an
// any with UseNumber (numbers must be json.Number): a caller that decoded the bytes to work on them
// saves decoding them again.
func (v *Validator) ValidateValue(entity string, version int, doc any) ([]Violation, error) {
	s, err := v.schema(entity, version)
	if err != nil {
		return nil, err
	}
	res, err := s.Validate(valueLoader{JSONLoader: goLoader, doc: doc})
	if err != nil {
		return []Violation{{Field: rootField, Message: err.Error()}}, nil
	}
	if res.Valid() {
		return nil, nil
	}
	return violations(res.Errors()), nil
}

func (v *Validator) schema(entity string, version int) (*gojsonschema.Schema, error) {
	if !isEntity(entity) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEntity, entity)
	}
	s, ok := v.schemas[versioned{entity, version}]
	if !ok {
		return nil, fmt.Errorf("%w: %s version %d", ErrUnknownSchema, entity, version)
	}
	return s, nil
}

// valueLoader hands gojsonschema a decoded document as it is: its Go loader would encode the
// document and decode it again. Validate only loads the document; the loader's other methods are
// those of one Go loader made once.
type valueLoader struct {
	gojsonschema.JSONLoader
	doc any
}

var goLoader = gojsonschema.NewGoLoader(nil)

func (l valueLoader) LoadJSON() (any, error) { return l.doc, nil }

func (l valueLoader) JsonSource() any { return l.doc }

func jsonError(data []byte) string {
	var x any
	if err := json.Unmarshal(data, &x); err != nil {
		return err.Error()
	}
	return "malformed document"
}

// violations turns gojsonschema's errors into one violation per field.
func violations(errs []gojsonschema.ResultError) []Violation {
	var out []Violation
	for _, e := range errs {
		switch e.Type() {
		case "condition_then", "condition_else", "number_all_of", "number_any_of", "number_one_of":
			// Summaries of a combinator: the errors of its branches are reported themselves.
			continue
		}
		field := e.Field()
		if e.Type() == "required" {
			// Point at the missing property, not at the object that lacks it.
			prop, _ := e.Details()["property"].(string)
			if field == rootField {
				field = prop
			} else {
				field += "." + prop
			}
		}
		out = append(out, Violation{Field: field, Message: e.Description()})
	}
	if len(out) == 0 {
		// Only summaries: keep them rather than call an invalid document valid.
		for _, e := range errs {
			out = append(out, Violation{Field: e.Field(), Message: e.Description()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	merged := out[:0]
	for _, x := range out {
		if n := len(merged); n > 0 && merged[n-1].Field == x.Field {
			if !strings.Contains(merged[n-1].Message, x.Message) {
				merged[n-1].Message += "; " + x.Message
			}
			continue
		}
		merged = append(merged, x)
	}
	return merged
}
