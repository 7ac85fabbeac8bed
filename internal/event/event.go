package event

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"socialhub/internal/rawjson"
)

// ContentType is the Kafka content-type header value of every message the hub writes.
const ContentType = "application/cloudevents+json"

// EntityTypeHeader is the Kafka header in which validate repeats a valid record's entity type (the
// entitytype extension), so a consumer can skip records it does not apply without decoding them.
const EntityTypeHeader = "entitytype"

// SpecVersion is the CloudEvents version the hub speaks.
const SpecVersion = "1.0"

// Ops carried in the op extension.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Event is a CloudEvents 1.0 event in structured mode. Data is kept as raw JSON so a stage can
// validate the bytes it read without decoding them twice.
type Event struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject,omitempty"`
	Time        time.Time       `json:"time"`
	DataSchema  string          `json:"dataschema,omitempty"`
	ContentType string          `json:"datacontenttype,omitempty"`
	ContentHash string          `json:"contenthash,omitempty"`
	EntityType  string          `json:"entitytype,omitempty"`
	Op          string          `json:"op,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// SourceName returns the source's own name: the part of Source after "socialhub/".
func (e *Event) SourceName() string { return strings.TrimPrefix(e.Source, "socialhub/") }

// Key is the partition key of a record from a source: "<source>/<external_id>".
func Key(source, externalID string) string { return source + "/" + externalID }

// SourceURI is the CloudEvents source of a source name.
func SourceURI(source string) string { return "socialhub/" + source }

// Type builds an event type "socialhub.<stage>.<entity>.<op>".
func Type(stage, entity, op string) string {
	return "socialhub." + stage + "." + entity + "." + op
}

// NewID returns a random event id (a UUIDv4 string); ids only need to be unique per event.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// Marshal encodes the event in structured JSON mode: the bytes json.Encoder writes for it with HTML
// escaping off (fields in declaration order, data compacted), without the newline.
func Marshal(e *Event) ([]byte, error) { return marshal(e, appendEvent) }

// marshal is Marshal with the direct encoder given: the tests hold appendEvent to one that declines
// everything, which leaves encoding/json, as Marshal was first written.
func marshal(e *Event, direct func([]byte, *Event) ([]byte, bool)) ([]byte, error) {
	if e.SpecVersion == "" {
		e.SpecVersion = SpecVersion
	}
	if e.ContentType == "" && len(e.Data) > 0 {
		e.ContentType = "application/json"
	}
	if b, ok := direct(make([]byte, 0, envelopeSize(e)), e); ok {
		return b, nil
	}
	// A time or data encoding/json refuses: let it say why.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("error encoding event %s: %w", e.ID, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// envelopeSize is room for the encoded event: its fields' names and values, the data, and some
// slack for escapes.
func envelopeSize(e *Event) int {
	return 200 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) + len(e.DataSchema) +
		len(e.ContentType) + len(e.ContentHash) + len(e.EntityType) + len(e.Op) + len(e.Data)
}

// appendEvent writes e as encoding/json would; ok is false when encoding/json would fail.
func appendEvent(b []byte, e *Event) ([]byte, bool) {
	b = append(b, `{"specversion":`...)
	b = rawjson.AppendString(b, e.SpecVersion)
	b = append(b, `,"id":`...)
	b = rawjson.AppendString(b, e.ID)
	b = append(b, `,"source":`...)
	b = rawjson.AppendString(b, e.Source)
	b = append(b, `,"type":`...)
	b = rawjson.AppendString(b, e.Type)
	b = appendOptional(b, `,"subject":`, e.Subject)
	b = append(b, `,"time":"`...)
	n := len(b)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	if !strictRFC3339(b[n:]) {
		return nil, false
	}
	b = append(b, '"')
	b = appendOptional(b, `,"dataschema":`, e.DataSchema)
	b = appendOptional(b, `,"datacontenttype":`, e.ContentType)
	b = appendOptional(b, `,"contenthash":`, e.ContentHash)
	b = appendOptional(b, `,"entitytype":`, e.EntityType)
	b = appendOptional(b, `,"op":`, e.Op)
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		var err error
		if b, err = rawjson.AppendCompact(b, e.Data); err != nil {
			return nil, false
		}
	}
	return append(b, '}'), true
}

// appendOptional writes an omitempty string field.
func appendOptional(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return rawjson.AppendString(append(b, name...), value)
}

// strictRFC3339 reports whether t, a time written in RFC 3339 layout, is one time.Time.MarshalJSON
// accepts: a four-digit year and a zone offset under 24 hours.
func strictRFC3339(t []byte) bool {
	if len(t) < len("2006-01-02T15:04:05Z") || t[4] != '-' {
		return false
	}
	if t[len(t)-1] == 'Z' {
		return true
	}
	zone := t[len(t)-len("Z07:00"):]
	if '0' <= zone[0] && zone[0] <= '9' {
		return false
	}
	return 10*(zone[1]-'0')+(zone[2]-'0') < 24
}

// Unmarshal decodes and checks an envelope. Errors wrap ErrInvalidEnvelope and say what is wrong,
// so the caller can dead-letter the record with that reason.
func Unmarshal(b []byte, e *Event) error { return unmarshal(b, e, decodeEnvelope) }

// unmarshal is Unmarshal with the direct decoder given: the tests hold decodeEnvelope to one that
// declines everything, which leaves encoding/json, as Unmarshal was first written.
func unmarshal(b []byte, e *Event, direct func([]byte, *Event) bool) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidEnvelope)
	}
	if !direct(b, e) {
		// Anything the direct decoder does not take goes through encoding/json, which decides as
		// it always did and says what is wrong.
		if err := json.Unmarshal(b, e); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidEnvelope, err)
		}
	}
	var missing []string
	if e.SpecVersion != SpecVersion {
		missing = append(missing, fmt.Sprintf("specversion must be %q", SpecVersion))
	}
	if e.ID == "" {
		missing = append(missing, "id is required")
	}
	if e.Source == "" {
		missing = append(missing, "source is required")
	}
	if e.Type == "" {
		missing = append(missing, "type is required")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidEnvelope, strings.Join(missing, "; "))
	}
	return nil
}

// decodeEnvelope decodes the envelopes the hub writes in one pass, into e as json.Unmarshal would.
// It reports false, leaving e as it was, for anything it does not decode exactly as json.Unmarshal
// does: invalid JSON, a key written with escapes or in other case than the field's, a field of the
// wrong type or null, a time time.Time refuses.
func decodeEnvelope(b []byte, e *Event) bool {
	d := envelopeDecoder{ev: *e}
	i := rawjson.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = rawjson.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return false
			}
			end, plain, ok := rawjson.String(b, i)
			if !ok || !plain {
				return false
			}
			key := b[i+1 : end-1]
			i = rawjson.SkipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			v := rawjson.SkipSpace(b, i+1)
			plain = false
			if v < len(b) && b[v] == '"' {
				i, plain, ok = rawjson.String(b, v)
			} else {
				i, ok = rawjson.Skip(b, v)
			}
			if !ok || !d.set(key, b, v, i, plain) {
				return false
			}
			i = rawjson.SkipSpace(b, i)
			if i >= len(b) {
				return false
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return false
			}
			i = rawjson.SkipSpace(b, i+1)
		}
	}
	if rawjson.SkipSpace(b, i) != len(b) {
		return false
	}
	d.setStrings(b)
	if d.hasData {
		// Copied only now, as json.RawMessage.UnmarshalJSON copies: into e's array, which must
		// not change when the envelope turns out to be one for encoding/json.
		d.ev.Data = append(d.ev.Data[:0], d.data...)
	}
	*e = d.ev
	return true
}

// envelopeDecoder gathers the string fields of an envelope so that one allocation holds them all.
type envelopeDecoder struct {
	ev      Event
	pending [16]pendingString
	n       int
	data    []byte // the last data member, copied into ev.Data once the envelope is read
	hasData bool
}

// pendingString is a field to set to b[start:end] once every field is read.
type pendingString struct {
	field      int // index into envelopeFields; -1 when overridden
	start, end int
}

// envelopeFields are the JSON names of Event's fields; the string fields come first, in the
// order of stringField.
var envelopeFields = []string{"specversion", "id", "source", "type", "subject", "dataschema", "datacontenttype", "contenthash", "entitytype", "op", "time", "data"}

// stringField returns the string field envelopeFields[k] of e.
func stringField(e *Event, k int) *string {
	switch k {
	case 0:
		return &e.SpecVersion
	case 1:
		return &e.ID
	case 2:
		return &e.Source
	case 3:
		return &e.Type
	case 4:
		return &e.Subject
	case 5:
		return &e.DataSchema
	case 6:
		return &e.ContentType
	case 7:
		return &e.ContentHash
	case 8:
		return &e.EntityType
	default:
		return &e.Op
	}
}

// set sets the field named key to the valid JSON value b[start:end]; plain says it is a string
// literal whose value is its bytes.
func (d *envelopeDecoder) set(key, b []byte, start, end int, plain bool) bool {
	value := b[start:end]
	field := -1
	for k, f := range envelopeFields {
		if string(key) == f {
			field = k
			break
		}
	}
	switch field {
	case -1:
		// encoding/json matches keys case-insensitively when no field has the exact name.
		for _, f := range envelopeFields {
			if bytes.EqualFold(key, []byte(f)) {
				return false
			}
		}
		return true
	case 10: // time
		return value[0] == '"' && d.ev.Time.UnmarshalJSON(value) == nil
	case 11: // data
		d.data, d.hasData = value, true
		return true
	}
	if value[0] != '"' {
		return false
	}
	// A value set now overrides what an earlier member of the same name left pending.
	for k := range d.n {
		if d.pending[k].field == field {
			d.pending[k].field = -1
		}
	}
	inner := value[1 : len(value)-1]
	switch {
	case !plain:
		*stringField(&d.ev, field) = rawjson.Unquote(value)
	case interned(inner) != "":
		*stringField(&d.ev, field) = interned(inner)
	case d.n == len(d.pending):
		*stringField(&d.ev, field) = string(inner)
	default:
		d.pending[d.n] = pendingString{field, start + 1, end - 1}
		d.n++
	}
	return true
}

// setStrings sets the pending fields to substrings of one copy of their values.
func (d *envelopeDecoder) setStrings(b []byte) {
	size := 0
	for _, p := range d.pending[:d.n] {
		if p.field >= 0 {
			size += p.end - p.start
		}
	}
	var all strings.Builder
	all.Grow(size)
	for _, p := range d.pending[:d.n] {
		if p.field >= 0 {
			all.Write(b[p.start:p.end])
		}
	}
	s, at := all.String(), 0
	for _, p := range d.pending[:d.n] {
		if p.field >= 0 {
			*stringField(&d.ev, p.field) = s[at : at+p.end-p.start]
			at += p.end - p.start
		}
	}
}

// internedValues are field values most events share: they are not copied for every event.
var internedValues = []string{
	SpecVersion, OpUpsert, OpDelete, "application/json", "resident", "service", "organization", "location",
	"service_at_location", "application_event",
}

// interned returns the shared string equal to b, or "".
func interned(b []byte) string {
	for _, s := range internedValues {
		if string(b) == s {
			return s
		}
	}
	return ""
}

// ContentHash returns the sha256 (hex) of the canonical JSON of data: object keys sorted, no
// insignificant whitespace, numbers as written. Two documents that differ only in key order or
// spacing hash alike, which is what lets a replay change nothing.
func ContentHash(data []byte) (string, error) {
	bp := canonicalBufs.Get().(*[]byte)
	defer canonicalBufs.Put(bp)
	canon, err := rawjson.AppendCanonical((*bp)[:0], data)
	if err != nil {
		if canon, err = canonicalSlow(data); err != nil {
			return "", err
		}
	} else {
		*bp = canon
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalBufs hold the canonical bytes ContentHash hashes and forgets.
var canonicalBufs = sync.Pool{New: func() any { return new([]byte) }}

// Canonical re-encodes JSON with sorted object keys and no insignificant whitespace. Of data, the
// first JSON value counts; what follows it is ignored.
func Canonical(data []byte) ([]byte, error) {
	if canon, err := rawjson.AppendCanonical(nil, data); err == nil {
		return canon, nil
	}
	return canonicalSlow(data)
}

// canonicalSlow is Canonical on encoding/json, for input rawjson refuses: encoding/json says what
// is wrong with it, in the words Canonical always used.
func canonicalSlow(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("error decoding JSON for canonical form: %w", err)
	}
	return rawjson.AppendValue(nil, v)
}
