package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// CheckWithEncodingJSON is Check as it was written on encoding/json: the document decoded by
// json.Decoder and its canonical form encoded by json.Encoder. Stored hashes were taken with it;
// Check must give the same data, hash and reasons for every input.
func (c *Checker) CheckWithEncodingJSON(entity, dataschema string, data []byte) Result {
	return c.check(entity, dataschema, data, codec{decode: oldDecodeDocument,
		canonical: func(_ string, _ int, _ []byte, doc any) ([]byte, error) { return oldCanonicalJSON(doc) }})
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
