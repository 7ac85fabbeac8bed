package dlq_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/dlq"
)

type answer struct {
	Error  string           `json:"error"`
	Fields []dlq.FieldError `json:"fields"`
	Items  []dlq.Entry      `json:"items"`
	Next   string           `json:"next"`
}

func call(t *testing.T, h http.Handler, method, target, body, token string) (int, answer, string) {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.RemoteAddr = "127.0.0.1:5555"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var a answer
	raw := w.Body.String()
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a), raw)
	require.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	return w.Code, a, raw
}

func fields(a answer) []string {
	var out []string
	for _, f := range a.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	mux := http.NewServeMux()
	var reruns []string
	r := dlq.NewReplayer(dlq.ReplayerOptions{Store: b.store, Logger: quiet, Rerun: func(s string) error { reruns = append(reruns, s); return nil }})
	dlq.NewHandler(dlq.HandlerOptions{Store: b.store, Replayer: r, Logger: quiet}).Mount(mux)

	code, a, raw := call(t, mux, "GET", "/v1/dlq?source=dszn&limit=2", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, a.Items, 2)
	require.NotEmpty(t, a.Next)
	require.Contains(t, raw, "Обязательное поле", "Russian unescaped")
	require.NotContains(t, raw, `"original"`, "the list leaves the records out")
	code, a, _ = call(t, mux, "GET", "/v1/dlq?source=dszn&limit=2&after="+a.Next, "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []string{b.ids[0]}, ids(a.Items))
	require.Empty(t, a.Next)
	code, a, _ = call(t, mux, "GET", "/v1/dlq?reason=%D0%98%D0%9D%D0%9D&stage=connector&status=open", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []string{b.ids[3]}, ids(a.Items))
	require.NotEmpty(t, a.Items[0].Reasons)

	for target, want := range map[string][]string{
		"/v1/dlq?limit=0":              {"limit"},
		"/v1/dlq?limit=много":          {"limit"},
		"/v1/dlq?limit=501":            {"limit"},
		"/v1/dlq?status=closed":        {"status"},
		"/v1/dlq?after=x":              {"after"},
		"/v1/dlq?status=x&after=x":     {"status", "after"},
		"/v1/dlq?status=open&after=-1": {"after"},
	} {
		code, a, _ := call(t, mux, "GET", target, "", "")
		require.Equal(t, http.StatusBadRequest, code, target)
		require.Equal(t, want, fields(a), target)
	}

	code, _, raw = call(t, mux, "GET", "/v1/dlq/"+b.ids[0], "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, raw, `"original":{`)
	require.Contains(t, raw, "Семейная медиация")
	code, a, _ = call(t, mux, "GET", "/v1/dlq/нет", "", "")
	require.Equal(t, http.StatusNotFound, code)
	require.NotEmpty(t, a.Error)

	code, _, raw = call(t, mux, "GET", "/v1/dlq/counts", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, raw, `"source":"grants"`)

	for body, want := range map[string][]string{
		`{}`:                         {"ids", "source"},
		`{"ids":["a"],"source":"b"}`: {"source"},
		`{"ids":["a",""]}`:           {"ids[1]"},
		`{"id":"a"}`:                 {"(body)"},
		`[1,2]`:                      {"(body)"},
		`не JSON`:                    {"(body)"},
	} {
		code, a, _ := call(t, mux, "POST", "/v1/dlq/replay", body, "")
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Equal(t, want, fields(a), body)
	}
	code, a, _ = call(t, mux, "POST", "/v1/dlq/replay", `{"ids":["`+b.ids[3]+`","нет","тоже нет"]}`, "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, []string{"ids[1]", "ids[2]"}, fields(a))

	code, _, raw = call(t, mux, "POST", "/v1/dlq/replay", `{"source":"grants"}`, "")
	require.Equal(t, http.StatusAccepted, code, raw)
	var res dlq.Result
	require.NoError(t, json.Unmarshal([]byte(raw), &res))
	require.Equal(t, 2, res.Replayed)
	require.Equal(t, []dlq.Rerun{{Source: "grants", DeadLetters: 2}}, res.Reruns)
	require.Equal(t, []string{"grants"}, reruns)
	code, a, _ = call(t, mux, "GET", "/v1/dlq?source=grants&status=replayed", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, a.Items, 2)
}

func TestHTTPOperatorOnly(t *testing.T) {
	t.Parallel()
	b := setupStore(t)
	open := http.NewServeMux()
	dlq.NewHandler(dlq.HandlerOptions{Store: b.store, Replayer: dlq.NewReplayer(dlq.ReplayerOptions{Store: b.store}), Logger: quiet}).Mount(open)
	r := httptest.NewRequest("GET", "/v1/dlq", nil) // from 192.0.2.1, another machine
	w := httptest.NewRecorder()
	open.ServeHTTP(w, r)
	require.Equal(t, http.StatusForbidden, w.Code)

	locked := http.NewServeMux()
	dlq.NewHandler(dlq.HandlerOptions{Store: b.store, Replayer: dlq.NewReplayer(dlq.ReplayerOptions{Store: b.store}), AdminToken: "секрет", Logger: quiet}).Mount(locked)
	code, _, _ := call(t, locked, "GET", "/v1/dlq", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _, _ = call(t, locked, "GET", "/v1/dlq", "", "wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _, _ = call(t, locked, "GET", "/v1/dlq", "", "секрет")
	require.Equal(t, http.StatusOK, code)
	req := httptest.NewRequest("POST", "/v1/dlq/replay", bytes.NewReader([]byte(`{"source":"x"}`)))
	w = httptest.NewRecorder()
	locked.ServeHTTP(w, req)
	require.Equal(t, http.StatusUnauthorized, w.Code)
}
