// Package jsonhttp writes the hub's JSON answers: UTF-8, Russian text as it is, and a value that
// cannot be encoded answered as a 500 rather than half a body. Every package with HTTP routes
// answers through it, so all of them answer alike.
package jsonhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Write answers v with the status as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err := enc.Encode(v); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"internal error"}` + "\n"))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // a write error means the client is gone
}
