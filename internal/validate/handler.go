package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"socialhub/internal/event"
	"socialhub/internal/jsonhttp"
	"socialhub/internal/rawjson"
	"socialhub/schemas"
)

// Limits of POST /v1/validate.
const (
	MaxBodyBytes = 5 << 20 // larger bodies are refused with 413
	MaxDepth     = 64      // deeper documents are refused: no HSDS document nests half as deep
	MaxBatch     = 10_000  // documents in one NDJSON body
)

// ndjson is the content type of a batch: one JSON document per line.
const ndjson = "application/x-ndjson"

// entitiesForOwners are the documents data owners can check: what the catalog takes from them.
var entitiesForOwners = []string{schemas.EntityService, schemas.EntityOrganization, schemas.EntityLocation}

// Handler serves the contract to data owners: the schemas (GET /v1/schemas, GET
// /v1/schemas/{name}) and the check every record goes through (POST /v1/validate), run by the
// same Checker as the validate stage, so a document it passes is one the pipeline passes.
type Handler struct {
	checker *Checker
}

// NewHandler returns the handler checking with c.
func NewHandler(c *Checker) *Handler { return &Handler{checker: c} }

// Mount registers the routes on m (*api.Server has this Handle).
func (h *Handler) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	m.Handle("POST /v1/validate", http.HandlerFunc(h.validate))
	m.Handle("GET /v1/schemas", http.HandlerFunc(h.listSchemas))
	m.Handle("GET /v1/schemas/{name}", http.HandlerFunc(h.getSchema))
}

// DocumentResult is the answer for one document.
type DocumentResult struct {
	Index int `json:"index"`
	// Line is the document's line in an NDJSON body (from 1).
	Line   int            `json:"line,omitempty"`
	Valid  bool           `json:"valid"`
	Entity string         `json:"entity,omitempty"`
	Schema string         `json:"dataschema,omitempty"` // the $id the document was checked against
	Errors []event.Reason `json:"errors"`
	// Normalized is the document as the hub would hold it: normalized and, valid, upgraded to the
	// current version; absent when the document is not JSON.
	Normalized json.RawMessage `json:"normalized,omitempty"`
}

// BatchResult is the answer for an NDJSON body.
type BatchResult struct {
	Documents int              `json:"documents"`
	Valid     int              `json:"valid"`
	Invalid   int              `json:"invalid"`
	Results   []DocumentResult `json:"results"`
}

// claim is what a request says the documents are; an empty entity is read from each document.
type claim struct {
	entity  string
	version int
}

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	c, ok := parseClaim(w, r)
	if !ok {
		return
	}
	batch := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			writeError(w, http.StatusUnsupportedMediaType, "unreadable Content-Type "+strconv.Quote(ct), nil)
			return
		case mt == ndjson:
			batch = true
		case mt != "application/json":
			writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json (one document) or "+ndjson+" (one per line), not "+mt, nil)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes (%d MiB): send fewer documents per request", MaxBodyBytes, MaxBodyBytes>>20), nil)
			return
		}
		writeError(w, http.StatusBadRequest, "error reading the body: "+err.Error(), nil)
		return
	}
	if !batch {
		if msg := unreadable(body); msg != "" {
			writeError(w, http.StatusUnprocessableEntity, msg, []event.Reason{{Field: rootField, Message: msg}})
			return
		}
		jsonhttp.Write(w, http.StatusOK, h.check(c, body, 0))
		return
	}
	var out BatchResult
	line := 0
	for len(body) > 0 {
		var doc []byte
		doc, body, _ = bytes.Cut(body, []byte{'\n'})
		line++
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if out.Documents == MaxBatch {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d documents in one body: split the batch", MaxBatch), nil)
			return
		}
		var res DocumentResult
		if msg := unreadable(doc); msg != "" {
			// One broken line does not hide the answers for the others.
			res = DocumentResult{Index: out.Documents, Errors: []event.Reason{{Field: rootField, Message: msg}}}
		} else {
			res = h.check(c, doc, out.Documents)
		}
		res.Line = line
		out.Documents++
		if res.Valid {
			out.Valid++
		} else {
			out.Invalid++
		}
		out.Results = append(out.Results, res)
	}
	if out.Results == nil {
		out.Results = []DocumentResult{}
	}
	jsonhttp.Write(w, http.StatusOK, out)
}

// unreadable says why doc cannot be checked at all: not UTF-8, not one JSON value, or nested
// deeper than MaxDepth. It returns "" for a document the checks can read.
func unreadable(doc []byte) string {
	if !utf8.Valid(doc) {
		return "the document is not valid UTF-8"
	}
	if d, at := depth(doc); d > MaxDepth {
		return fmt.Sprintf("the document nests deeper than %d levels (at %s)", MaxDepth, Position(doc, int64(at)))
	}
	if !rawjson.Valid(doc) {
		_, err := decodeDocument(doc)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return err.Error()
	}
	return ""
}

// depth returns how deep doc nests arrays and objects, stopping at the first level beyond
// MaxDepth, and the offset it got there. It reads the bytes once, before anything decodes them.
func depth(doc []byte) (deepest, at int) {
	d, inString, escaped := 0, false, false
	for i, c := range doc {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			if d > deepest {
				deepest, at = d, i
				if d > MaxDepth {
					return deepest, at
				}
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest, at
}

// check runs the checks on one document the request or the document itself names the entity of.
func (h *Handler) check(c claim, doc []byte, index int) DocumentResult {
	res := DocumentResult{Index: index, Entity: c.entity}
	version := c.version
	if c.entity == "" {
		res.Entity = schemas.EntityService
		if id := declaredSchema(doc); id != "" {
			name, v, err := schemas.ParseSchemaID(id)
			switch {
			case err != nil:
				res.Errors = []event.Reason{{Field: "$schema", Message: err.Error()}}
				return res
			case !ownersEntity(name):
				res.Errors = []event.Reason{{Field: "$schema", Message: "names the schema of " + name + "; POST /v1/validate checks " + strings.Join(entitiesForOwners, ", ")}}
				return res
			}
			res.Entity = name
			if version == 0 {
				version = v
			}
		}
	}
	if version == 0 {
		version = schemas.CurrentVersion
	}
	res.Schema = schemas.SchemaIDVersion(res.Entity, version)
	r := h.checker.Check(res.Entity, res.Schema, doc)
	res.Valid = len(r.Reasons) == 0
	res.Errors = r.Reasons
	if res.Errors == nil {
		res.Errors = []event.Reason{}
	}
	res.Normalized = r.Data
	return res
}

// declaredSchema returns the document's top-level "$schema", the way a JSON document names its
// schema, or "".
func declaredSchema(doc []byte) string {
	if !bytes.Contains(doc, []byte(`"$schema"`)) {
		return ""
	}
	var d struct {
		Schema string `json:"$schema"`
	}
	_ = json.Unmarshal(doc, &d) // the checks report a document that does not decode
	return d.Schema
}

func ownersEntity(name string) bool {
	for _, e := range entitiesForOwners {
		if e == name {
			return true
		}
	}
	return false
}

// parseClaim reads ?entity= and ?version=; it answers 422 and returns false when they are wrong.
func parseClaim(w http.ResponseWriter, r *http.Request) (claim, bool) {
	q := r.URL.Query()
	var c claim
	var bad []event.Reason
	if e := q.Get("entity"); e != "" {
		if !ownersEntity(e) {
			bad = append(bad, event.Reason{Field: "entity", Message: "must be one of " + strings.Join(entitiesForOwners, ", ") + ", not " + strconv.Quote(e)})
		}
		c.entity = e
	}
	if v := q.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > schemas.CurrentVersion {
			bad = append(bad, event.Reason{Field: "version", Message: fmt.Sprintf("must be a profile version, 1 to %d, not %q", schemas.CurrentVersion, v)})
		}
		c.version = n
	}
	if len(bad) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid query parameters", bad)
		return claim{}, false
	}
	return c, true
}

func (h *Handler) listSchemas(w http.ResponseWriter, _ *http.Request) {
	jsonhttp.Write(w, http.StatusOK, map[string]any{"current_version": schemas.CurrentVersion, "schemas": schemas.Schemas()})
}

func (h *Handler) getSchema(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(r.PathValue("name"), ".json")
	version := schemas.CurrentVersion
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid query parameters", []event.Reason{{Field: "version", Message: "must be a number, not " + strconv.Quote(v)}})
			return
		}
		version = n
	}
	b, err := schemas.Schema(name, version)
	if errors.Is(err, schemas.ErrUnknownSchema) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no schema %q in version %d (GET /v1/schemas lists them)", name, version), nil)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error", nil)
		return
	}
	w.Header().Set("Content-Type", "application/schema+json; charset=utf-8")
	_, _ = w.Write(b)
}

// errorBody is the house error shape.
type errorBody struct {
	Error  string         `json:"error"`
	Fields []event.Reason `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string, fields []event.Reason) {
	jsonhttp.Write(w, status, errorBody{Error: msg, Fields: fields})
}
