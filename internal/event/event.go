package event

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// ContentType is the Kafka content-type header value of every message the hub writes.
const ContentType = "application/cloudevents+json"

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

// Marshal encodes the event in structured JSON mode.
func Marshal(e *Event) ([]byte, error) {
	if e.SpecVersion == "" {
		e.SpecVersion = SpecVersion
	}
	if e.ContentType == "" && len(e.Data) > 0 {
		e.ContentType = "application/json"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("error encoding event %s: %w", e.ID, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Unmarshal decodes and checks an envelope. Errors wrap ErrInvalidEnvelope and say what is wrong,
// so the caller can dead-letter the record with that reason.
func Unmarshal(b []byte, e *Event) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidEnvelope)
	}
	if err := json.Unmarshal(b, e); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEnvelope, err)
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

// ContentHash returns the sha256 (hex) of the canonical JSON of data: object keys sorted, no
// insignificant whitespace, numbers as written. Two documents that differ only in key order or
// spacing hash alike, which is what lets a replay change nothing.
func ContentHash(data []byte) (string, error) {
	canon, err := Canonical(data)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical re-encodes JSON with sorted object keys and no insignificant whitespace.
func Canonical(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("error decoding JSON for canonical form: %w", err)
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeString(buf, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case string:
		return writeString(buf, x)
	case json.Number:
		buf.WriteString(x.String())
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("unexpected JSON value of type %T", v)
	}
	return nil
}

func writeString(buf *bytes.Buffer, s string) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
	return nil
}
