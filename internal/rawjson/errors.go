package rawjson

import "errors"

// ErrSyntax is returned for input that is not valid JSON where JSON is required. It says no more:
// callers that report what is wrong ask encoding/json, whose messages people know.
var ErrSyntax = errors.New("invalid JSON")

// ErrUnsupported is returned by AppendValue for a value it does not write itself (a type that
// decoding JSON into an any does not produce, or an invalid json.Number).
var ErrUnsupported = errors.New("value not written by rawjson")
