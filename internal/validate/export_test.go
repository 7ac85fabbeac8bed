package validate

import (
	"bytes"
	"encoding/json"
)

// CheckWithEncodingJSON is Check as it was written on encoding/json: the document decoded by
// json.Decoder and its canonical form encoded by json.Encoder. Stored hashes were taken with it;
// Check must give the same data, hash and reasons for every input.
func (c *Checker) CheckWithEncodingJSON(entity, dataschema string, data []byte) Result {
	return c.check(entity, dataschema, data, codec{decode: decodeDocumentJSON,
		canonical: func(_ string, _ int, _ []byte, doc any) ([]byte, error) { return oldCanonicalJSON(doc) }})
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
