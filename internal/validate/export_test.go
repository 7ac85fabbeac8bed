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
	"socialhub/schemas"
)

// CheckWithEncodingJSON is Check as it was written on encoding/json: the document decoded by
// json.Decoder and its canonical form encoded by json.Encoder. Stored hashes were taken with it;
// Check must give the same data, hash and reasons for every input.
func (c *Checker) CheckWithEncodingJSON(entity, dataschema string, data []byte) Result {
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
	doc, err := oldDecodeDocument(data)
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
			for _, v := range violations {
				reasons = append(reasons, event.Reason{Field: v.Field, Message: "after the upgrade from version " + strconv.Itoa(res.Version) + ": " + v.Message})
			}
		}
	}
	res.Data, err = oldCanonicalJSON(doc)
	if err != nil {
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

func oldDecodeDocument(data []byte) (any, error) {
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

func oldCanonicalJSON(doc any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
