package validate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"socialhub/internal/event"
	"socialhub/internal/rawjson"
	"socialhub/schemas"
)

// Counts holds how many values of each kind normalization rewrote in one document.
type Counts [numFields]int

// Each calls fn for every kind of field with a count above zero, in a fixed order.
func (c *Counts) Each(fn func(field string, n int)) {
	for i, n := range c {
		if n > 0 {
			fn(fieldLabels[i], n)
		}
	}
}

// Result is what Check found out about one document.
type Result struct {
	// Version is the profile version the document was checked against: the one it claimed.
	Version int
	// Data is the document normalized and upgraded to schemas.CurrentVersion, as canonical JSON
	// (object keys sorted, no insignificant whitespace, numbers as written: event.Canonical's
	// form); nil when the data is not one JSON value. When Reasons is set it is the document as
	// far as the checks got: normalized, not upgraded.
	Data []byte
	// ContentHash is the sha256 (hex) of Data, which is canonical already; "" when Reasons is set.
	ContentHash string
	// Reasons lists why the document cannot go on, sorted by field; nil when it can.
	Reasons []event.Reason
	// Normalized counts the values normalization rewrote.
	Normalized Counts
}

// Checker runs the checks a document goes through before it enters the hub: the validate stage
// runs them on every record, and POST /v1/validate on what data owners send, so both answer alike.
// It is safe for concurrent use.
type Checker struct {
	validator *schemas.Validator
}

// NewChecker returns a checker validating with v.
func NewChecker(v *schemas.Validator) *Checker { return &Checker{validator: v} }

// Check checks data, a document of entity claiming the schema $id dataschema ("" claims the
// current version). Service documents are normalized first (see normalizeService), so the profile
// judges the values the catalog will hold; the document is then validated against the version it
// claims and, valid, upgraded to the current version. The document is decoded once and encoded
// once, in canonical form, which is what the content hash is taken of: the same input gives the
// same hash run after run.
func (c *Checker) Check(entity, dataschema string, data []byte) Result {
	return c.check(entity, dataschema, data, codec{decode: decodeDocument, canonical: canonicalForm})
}

// codec is how check reads a document and writes its canonical form. Check uses rawjson; the
// tests hold it to the encoding/json codec the stored hashes were first taken with.
type codec struct {
	decode    func(data []byte) (any, error)
	canonical func(entity string, version int, data []byte, doc any) ([]byte, error)
}

func (c *Checker) check(entity, dataschema string, data []byte, cd codec) Result {
	res := Result{Version: schemas.CurrentVersion}
	if !schemas.IsEntity(entity) {
		res.Reasons = []event.Reason{{Field: "(envelope).entitytype", Message: "unknown entity type " + strconv.Quote(entity)}}
		return res
	}
	if dataschema != "" {
		name, version, err := schemas.ParseSchemaID(dataschema)
		if err != nil {
			res.Reasons = []event.Reason{{Field: "(envelope).dataschema", Message: err.Error()}}
			return res
		}
		if name != entity {
			res.Reasons = []event.Reason{{Field: "(envelope).dataschema", Message: "dataschema " + strconv.Quote(dataschema) + " is the schema of " + name + ", not of " + entity}}
			return res
		}
		res.Version = version
	}
	doc, err := cd.decode(data)
	if err != nil {
		res.Reasons = []event.Reason{{Field: rootField, Message: err.Error()}}
		return res
	}
	var n normalizer
	if m, ok := doc.(map[string]any); ok && entity == schemas.EntityService {
		normalizeService(m, &n)
	}
	res.Normalized = n.counts
	violations, err := c.validator.ValidateValue(entity, res.Version, doc)
	if err != nil {
		// The entity and the version were checked above: this is not the document's fault.
		res.Reasons = []event.Reason{{Field: rootField, Message: err.Error()}}
		return res
	}
	reasons := n.reasons
	for _, v := range violations {
		reasons = append(reasons, event.Reason{Field: v.Field, Message: v.Message})
	}
	if len(reasons) == 0 && res.Version != schemas.CurrentVersion {
		if doc, err = schemas.Upgrade(entity, res.Version, doc); err != nil {
			reasons = append(reasons, event.Reason{Field: "(envelope).dataschema", Message: err.Error()})
		} else if violations, err = c.validator.ValidateValue(entity, schemas.CurrentVersion, doc); err != nil {
			reasons = append(reasons, event.Reason{Field: rootField, Message: err.Error()})
		} else {
			// An upgrade must not turn a valid document invalid; should one, the record waits in dlq
			// for the upgrade's fix rather than enter the catalog broken.
			for _, v := range violations {
				reasons = append(reasons, event.Reason{Field: v.Field, Message: "after the upgrade from version " + strconv.Itoa(res.Version) + ": " + v.Message})
			}
		}
	}
	res.Data, err = cd.canonical(entity, res.Version, data, doc)
	if err != nil {
		// Decoded JSON encodes again; should it not, say so rather than pass it on.
		reasons = append(reasons, event.Reason{Field: rootField, Message: err.Error()})
	}
	if len(reasons) > 0 {
		res.Reasons = mergeReasons(reasons)
		return res
	}
	sum := sha256.Sum256(res.Data)
	res.ContentHash = hex.EncodeToString(sum[:])
	return res
}

// rootField names the document itself in a reason.
const rootField = "(root)"

// decodeDocument decodes one JSON value, numbers as json.Number (the schema check and the
// canonical form keep them as written). Errors say where the JSON breaks.
func decodeDocument(data []byte) (any, error) {
	if doc, err := rawjson.Decode(data); err == nil {
		return doc, nil
	}
	// Broken JSON: encoding/json finds where.
	return decodeDocumentJSON(data)
}

// decodeDocumentJSON is decodeDocument by encoding/json alone, as it was first written.
func decodeDocumentJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no document: an upsert carries one")
		}
		return nil, syntaxError(data, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		next := end + int64(len(data[end:])-len(bytes.TrimLeft(data[end:], " \t\r\n")))
		return nil, errors.New("invalid JSON at " + Position(data, next) + ": more than one value")
	}
	return doc, nil
}

func syntaxError(data []byte, err error) error {
	offset := int64(len(data))
	var se *json.SyntaxError
	if errors.As(err, &se) {
		offset = se.Offset
		if offset > 0 {
			offset-- // Offset counts the byte that broke the syntax
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("unexpected end of JSON input")
	}
	return errors.New("invalid JSON at " + Position(data, offset) + ": " + err.Error())
}

// Position describes byte offset of data as "line L, column C" (from 1; columns count bytes).
func Position(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := offset - int64(bytes.LastIndexByte(before, '\n'))
	return "line " + strconv.Itoa(line) + ", column " + strconv.FormatInt(col, 10)
}

// canonicalForm returns the canonical form of doc, decoded from data and checked as a document of
// entity claiming version. A document neither normalized (only services are) nor upgraded is data
// as it came: its canonical form is read straight from the bytes, which gives canonicalJSON's bytes
// without walking the maps.
func canonicalForm(entity string, version int, data []byte, doc any) ([]byte, error) {
	if entity != schemas.EntityService && version == schemas.CurrentVersion {
		if b, err := rawjson.AppendCanonical(make([]byte, 0, len(data)), data); err == nil {
			return b, nil
		}
	}
	return canonicalJSON(doc, len(data))
}

// canonicalJSON encodes a decoded document in canonical form: map keys sorted, json.Number as
// written and strings as event.Canonical writes them, so the bytes equal event.Canonical's and need
// no second pass to be hashed. They are the bytes encoding/json writes for doc.
func canonicalJSON(doc any, size int) ([]byte, error) {
	if b, err := rawjson.AppendValue(make([]byte, 0, size+size/8), doc); err == nil {
		return b, nil
	}
	// A value encoding/json refuses (a json.Number that is no number): let it say why.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
