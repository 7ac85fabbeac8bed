package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// CurrentVersion is the profile version the hub writes: validate upgrades every document to it, and
// SchemaID names it.
const CurrentVersion = 2

// The profile is versioned as a whole: version N is every schema file under the $id
// baseURL+"vN/"+file, so relative $refs between files stay inside one version. Version 1 is the
// files at the top of this directory; version N>1 is version N-1 with the files of directory vN/
// put in place of their namesakes. A version's directory holds only what it changes: the files it
// does not hold are carried over under the new version's $id. Old versions never change, so an
// event that claims one stays readable.

// upgrades[n] rewrites a document of an entity from version n to version n+1. doc is decoded JSON
// (numbers as json.Number); an upgrade may change it in place and returns the document. It never
// fails: a document valid in version n must come out valid in version n+1.
var upgrades = map[int]func(entity string, doc any) any{
	1: upgradeV1,
}

// upgradeV1 moves a service's fees (HSDS 2.0's name, which version 1 let through as an unknown
// field) into fees_description, HSDS 3.0's name; version 2 refuses fees.
func upgradeV1(entity string, doc any) any {
	m, ok := doc.(map[string]any)
	if !ok || entity != EntityService {
		return doc
	}
	fees, has := m["fees"]
	if !has {
		return doc
	}
	delete(m, "fees")
	var text string
	switch x := fees.(type) {
	case nil:
		return doc
	case string:
		text = x
	case json.Number:
		text = x.String()
	case bool:
		text = strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return doc // decoded JSON encodes again
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return doc
	}
	switch old, _ := m["fees_description"].(string); {
	case strings.TrimSpace(old) == "":
		m["fees_description"] = text
	case !strings.Contains(old, text):
		m["fees_description"] = old + "; " + text
	}
	return doc
}

// Upgrade brings doc, a decoded document of entity in version from, to CurrentVersion by chaining
// the upgrades of every version in between. A document already current comes back as it is.
func Upgrade(entity string, from int, doc any) (any, error) {
	if from < 1 || from > CurrentVersion {
		return nil, fmt.Errorf("%w: version %d", ErrUnknownSchema, from)
	}
	for v := from; v < CurrentVersion; v++ {
		if up := upgrades[v]; up != nil {
			doc = up(entity, doc)
		}
	}
	return doc, nil
}

// SchemaIDVersion returns the $id of the profile schema name (an entity or any other file of the
// profile, like "phone") in version, or "" when there is no such schema or version.
func SchemaIDVersion(name string, version int) string {
	if version < 1 || version > CurrentVersion {
		return ""
	}
	return knownIDs().byName[versionedName{name, version}]
}

// versionedName is a schema of the profile in one version.
type versionedName struct {
	name    string
	version int
}

// knownIDs are the $ids of every schema of the profile in every version, both ways (the legacy
// $ids too, read as version 1), so the validate stage names and reads a dataschema per record
// without building strings.
var knownIDs = sync.OnceValue(func() (ids struct {
	byName map[versionedName]string
	byID   map[string]versionedName
}) {
	ids.byName = make(map[versionedName]string, len(profileFiles)*CurrentVersion)
	ids.byID = make(map[string]versionedName, len(profileFiles)*(CurrentVersion+1))
	for _, f := range profileFiles {
		name := strings.TrimSuffix(f, ".json")
		for v := 1; v <= CurrentVersion; v++ {
			id := versionBase(v) + f
			ids.byName[versionedName{name, v}] = id
			ids.byID[id] = versionedName{name, v}
		}
		ids.byID[legacyBase+f] = versionedName{name, 1}
	}
	return ids
})

// legacyBase prefixed the $ids before the profile had versions; they name version 1.
const legacyBase = baseURL

func versionBase(version int) string { return baseURL + "v" + strconv.Itoa(version) + "/" }

// ParseSchemaID returns the schema name and version a $id (an event's dataschema) names. The $ids
// of before versions (".../hsds-3.0/service.json") name version 1. Anything else is
// ErrUnknownSchema.
func ParseSchemaID(id string) (name string, version int, err error) {
	if known, ok := knownIDs().byID[id]; ok {
		return known.name, known.version, nil
	}
	rest, ok := strings.CutPrefix(id, baseURL)
	if !ok {
		return "", 0, fmt.Errorf("%w: %q is not a socialhub profile $id", ErrUnknownSchema, id)
	}
	version = 1
	if v, file, found := strings.Cut(rest, "/"); found {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if !strings.HasPrefix(v, "v") || err != nil || n < 1 || strings.Contains(file, "/") {
			return "", 0, fmt.Errorf("%w: %q", ErrUnknownSchema, id)
		}
		if n > CurrentVersion {
			return "", 0, fmt.Errorf("%w: %q names version %d; the hub knows versions 1 to %d", ErrUnknownSchema, id, n, CurrentVersion)
		}
		version, rest = n, file
	}
	name, ok = strings.CutSuffix(rest, ".json")
	if !ok || !isProfileFile(name) {
		return "", 0, fmt.Errorf("%w: %q names no schema of the profile", ErrUnknownSchema, id)
	}
	return name, version, nil
}

func isProfileFile(name string) bool {
	for _, f := range profileFiles {
		if f == name+".json" {
			return true
		}
	}
	return false
}

// SchemaInfo describes one schema of the profile and its versions.
type SchemaInfo struct {
	Name     string        `json:"name"`
	Entity   bool          `json:"entity"` // a document of its own, which Validate accepts
	Versions []VersionInfo `json:"versions"`
}

// VersionInfo is one version of a schema. Changed says the version's file differs from the
// previous version's, apart from its $id.
type VersionInfo struct {
	Version int    `json:"version"`
	ID      string `json:"$id"`
	Changed bool   `json:"changed"`
}

// Schemas lists every schema of the profile with its versions, sorted by name.
func Schemas() []SchemaInfo {
	out := make([]SchemaInfo, 0, len(profileFiles))
	for _, f := range profileFiles {
		name := strings.TrimSuffix(f, ".json")
		info := SchemaInfo{Name: name, Entity: isEntity(name)}
		for v := 1; v <= CurrentVersion; v++ {
			_, changed := overlay(v, f)
			info.Versions = append(info.Versions, VersionInfo{Version: v, ID: SchemaIDVersion(name, v), Changed: v == 1 || changed})
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func isEntity(name string) bool {
	for _, e := range entities {
		if e == name {
			return true
		}
	}
	return false
}

// Schema returns the schema document name in version, with that version's $id.
func Schema(name string, version int) ([]byte, error) {
	if SchemaIDVersion(name, version) == "" {
		return nil, fmt.Errorf("%w: %s version %d", ErrUnknownSchema, name, version)
	}
	docs, err := versionDocs()
	if err != nil {
		return nil, err
	}
	return docs[version-1][name+".json"], nil
}

// overlay returns version v's own file f when its directory holds one.
func overlay(v int, f string) ([]byte, bool) {
	if v == 1 {
		return nil, false
	}
	b, err := fs.ReadFile(files, "v"+strconv.Itoa(v)+"/"+f)
	return b, err == nil
}

// versionDocs is every version's schema files (index version-1), each with its version's $id.
var versionDocs = sync.OnceValues(func() ([]map[string][]byte, error) {
	out := make([]map[string][]byte, 0, CurrentVersion)
	for v := 1; v <= CurrentVersion; v++ {
		docs := make(map[string][]byte, len(profileFiles))
		for _, f := range profileFiles {
			name := strings.TrimSuffix(f, ".json")
			want := SchemaIDVersion(name, v)
			b, own := overlay(v, f)
			if !own {
				var err error
				if v == 1 {
					b, err = files.ReadFile(f)
				} else {
					b, err = withID(out[v-2][f], SchemaIDVersion(name, v-1), want)
				}
				if err != nil {
					return nil, fmt.Errorf("error reading schema %s version %d: %w", f, v, err)
				}
			}
			if id := declaredID(b); id != want {
				return nil, fmt.Errorf("schema %s version %d: $id is %q, want %q", f, v, id, want)
			}
			docs[f] = b
		}
		out = append(out, docs)
	}
	return out, nil
})

// withID carries a file over to the next version: its $id is rewritten where it is written, so the
// document reads as its file does.
func withID(b []byte, from, to string) ([]byte, error) {
	old := []byte(`"$id": "` + from + `"`)
	if bytes.Count(b, old) != 1 {
		return nil, fmt.Errorf("$id %q not written as %s", from, old)
	}
	return bytes.Replace(b, old, []byte(`"$id": "`+to+`"`), 1), nil
}

func declaredID(b []byte) string {
	var s struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return ""
	}
	return s.ID
}

// IsEntity says whether name is an entity of the profile: a document of its own, which the
// Validator accepts.
func IsEntity(name string) bool { return isEntity(name) }
