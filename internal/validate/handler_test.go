package validate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/event"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

func newHandlerMux(t testing.TB) *http.ServeMux {
	t.Helper()
	mux := http.NewServeMux()
	validate.NewHandler(validate.NewChecker(newValidator(t))).Mount(mux)
	return mux
}

// do sends a request and decodes the JSON answer into out.
func do(t testing.TB, mux http.Handler, method, path, contentType string, body []byte, out any) int {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if out != nil {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), out), rec.Body.String())
	}
	require.NotContains(t, rec.Body.String(), `\u04`, "Russian unescaped")
	return rec.Code
}

type errorBody struct {
	Error  string         `json:"error"`
	Fields []event.Reason `json:"fields"`
}

// POST /v1/validate answers what the pipeline would: the same reasons the stage dead-letters with,
// and the normalized document the stage writes to valid.
func TestHandlerSameAsStage(t *testing.T) {
	t.Parallel()
	mux := newHandlerMux(t)
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})

	good := mustJSON(t, messyDoc("DSZN-7"))
	var res validate.DocumentResult
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "application/json", good, &res))
	require.True(t, res.Valid, "%+v", res.Errors)
	require.Empty(t, res.Errors)
	require.Equal(t, "service", res.Entity)
	require.Equal(t, schemas.SchemaID(schemas.EntityService), res.Schema)
	out, err := s.Process(rawMessage(t, topics, rawEvent(t, "DSZN-7", schemas.EntityService, event.OpUpsert, good)))
	require.NoError(t, err)
	var ev event.Event
	require.NoError(t, event.Unmarshal(out.Value, &ev))
	require.Equal(t, string(ev.Data), string(res.Normalized))

	bad := messyDoc("DSZN-8")
	delete(bad, "status")
	bad["phones"] = []any{map[string]any{"id": "p", "number": "звонить в приёмную"}}
	badJSON := mustJSON(t, bad)
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate?entity=service", "", badJSON, &res))
	require.False(t, res.Valid)
	out, err = s.Process(rawMessage(t, topics, rawEvent(t, "DSZN-8", schemas.EntityService, event.OpUpsert, badJSON)))
	require.NoError(t, err)
	_, dl := decodeDeadLetter(t, out)
	require.Equal(t, dl.Reasons, res.Errors)
	require.Equal(t, []string{"phones.0.number", "status"}, fields(res.Errors))
	var normalized map[string]any
	require.NoError(t, json.Unmarshal(res.Normalized, &normalized))
	require.Equal(t, "http://www.tcso-marino.mos.ru", normalized["url"], "normalized as far as it goes")
}

func TestHandlerEntityAndVersion(t *testing.T) {
	t.Parallel()
	mux := newHandlerMux(t)
	org := []byte(`{"id": "inn-7707083893", "name": "АНО \"Помощь\""}`)
	var res validate.DocumentResult
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate?entity=organization", "application/json", org, &res))
	require.True(t, res.Valid, "%+v", res.Errors)
	require.Equal(t, "organization", res.Entity)

	// A document naming its schema picks the entity and the version itself.
	withSchema := []byte(`{"$schema": "https://socialhub.city/schemas/hsds-3.0/v1/location.json", "id": "l1", "location_type": "virtual", "name": "Онлайн"}`)
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "", withSchema, &res))
	require.True(t, res.Valid, "%+v", res.Errors)
	require.Equal(t, "location", res.Entity)
	require.Equal(t, "https://socialhub.city/schemas/hsds-3.0/v1/location.json", res.Schema)

	// A version 1 service with fees: valid in version 1 and upgraded; refused as version 2.
	v1 := mustJSON(t, v1Doc("S1"))
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate?version=1", "", v1, &res))
	require.True(t, res.Valid, "%+v", res.Errors)
	require.Contains(t, string(res.Normalized), `"fees_description":"бесплатно"`)
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "", v1, &res))
	require.Equal(t, []string{"fees"}, fields(res.Errors))

	resident := []byte(`{"$schema": "https://socialhub.city/schemas/hsds-3.0/v1/resident.json"}`)
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "", resident, &res))
	require.Equal(t, []string{"$schema"}, fields(res.Errors))

	var e errorBody
	require.Equal(t, http.StatusUnprocessableEntity, do(t, mux, http.MethodPost, "/v1/validate?entity=resident&version=7", "", org, &e))
	require.Equal(t, []string{"entity", "version"}, fields(e.Fields))
}

func TestHandlerBatch(t *testing.T) {
	t.Parallel()
	mux := newHandlerMux(t)
	bad := serviceDoc("S2")
	delete(bad, "name")
	body := strings.Join([]string{
		string(mustJSON(t, serviceDoc("S1"))),
		"",
		string(mustJSON(t, bad)),
		`{"id": "S3", "name": }`,
		strings.Repeat("[", validate.MaxDepth+1) + strings.Repeat("]", validate.MaxDepth+1),
	}, "\n") + "\n"
	var res validate.BatchResult
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "application/x-ndjson; charset=utf-8", []byte(body), &res))
	require.Equal(t, 4, res.Documents)
	require.Equal(t, 1, res.Valid)
	require.Equal(t, 3, res.Invalid)
	require.Len(t, res.Results, 4)
	for i, r := range res.Results {
		require.Equal(t, i, r.Index)
	}
	require.Equal(t, []int{1, 3, 4, 5}, []int{res.Results[0].Line, res.Results[1].Line, res.Results[2].Line, res.Results[3].Line})
	require.True(t, res.Results[0].Valid)
	require.Equal(t, []string{"name"}, fields(res.Results[1].Errors))
	require.Contains(t, res.Results[2].Errors[0].Message, "invalid JSON at line 1, column 22")
	require.Contains(t, res.Results[3].Errors[0].Message, "deeper than 64 levels")

	var empty validate.BatchResult
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "application/x-ndjson", nil, &empty))
	require.Equal(t, 0, empty.Documents)
	require.NotNil(t, empty.Results)
}

func TestHandlerLimits(t *testing.T) {
	t.Parallel()
	mux := newHandlerMux(t)
	var e errorBody

	require.Equal(t, http.StatusUnprocessableEntity, do(t, mux, http.MethodPost, "/v1/validate", "", []byte("{\"id\": \"S1\",\n  \"name\" \"x\"}"), &e))
	require.Contains(t, e.Error, "invalid JSON at line 2, column 10")
	require.Equal(t, []string{"(root)"}, fields(e.Fields))

	deep := strings.Repeat(`{"a":`, validate.MaxDepth+1) + "1" + strings.Repeat("}", validate.MaxDepth+1)
	require.Equal(t, http.StatusUnprocessableEntity, do(t, mux, http.MethodPost, "/v1/validate", "", []byte(deep), &e))
	require.Contains(t, e.Error, "deeper than 64 levels")
	ok := strings.Repeat(`{"a":`, validate.MaxDepth-1) + `"{{{{[[["` + strings.Repeat("}", validate.MaxDepth-1)
	var res validate.DocumentResult
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodPost, "/v1/validate", "", []byte(ok), &res), "brackets in strings do not count")

	require.Equal(t, http.StatusUnprocessableEntity, do(t, mux, http.MethodPost, "/v1/validate", "", []byte("{\"name\": \"\xff\"}"), &e))
	require.Contains(t, e.Error, "UTF-8")

	huge := append([]byte(`{"description": "`), bytes.Repeat([]byte("а"), validate.MaxBodyBytes/2+1)...)
	require.Equal(t, http.StatusRequestEntityTooLarge, do(t, mux, http.MethodPost, "/v1/validate", "", append(huge, `"}`...), &e))
	require.Contains(t, e.Error, "5 MiB")

	var many strings.Builder
	for range validate.MaxBatch + 1 {
		many.WriteString("{}\n")
	}
	require.Equal(t, http.StatusRequestEntityTooLarge, do(t, mux, http.MethodPost, "/v1/validate", "application/x-ndjson", []byte(many.String()), &e))
	require.Contains(t, e.Error, fmt.Sprint(validate.MaxBatch))

	require.Equal(t, http.StatusUnsupportedMediaType, do(t, mux, http.MethodPost, "/v1/validate", "text/csv", []byte("a;b"), &e))
}

func TestHandlerSchemas(t *testing.T) {
	t.Parallel()
	mux := newHandlerMux(t)
	var list struct {
		CurrentVersion int                  `json:"current_version"`
		Schemas        []schemas.SchemaInfo `json:"schemas"`
	}
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodGet, "/v1/schemas", "", nil, &list))
	require.Equal(t, schemas.CurrentVersion, list.CurrentVersion)
	require.Len(t, list.Schemas, len(schemas.Schemas()))
	require.GreaterOrEqual(t, len(list.Schemas), 13)
	var svc schemas.SchemaInfo
	for _, s := range list.Schemas {
		if s.Name == "service" {
			svc = s
		}
	}
	require.Equal(t, []schemas.VersionInfo{
		{Version: 1, ID: "https://socialhub.city/schemas/hsds-3.0/v1/service.json", Changed: true},
		{Version: 2, ID: "https://socialhub.city/schemas/hsds-3.0/v2/service.json", Changed: true},
	}, svc.Versions)

	var doc map[string]any
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodGet, "/v1/schemas/service", "", nil, &doc))
	require.Equal(t, "https://socialhub.city/schemas/hsds-3.0/v2/service.json", doc["$id"])
	require.Equal(t, http.StatusOK, do(t, mux, http.MethodGet, "/v1/schemas/phone?version=1", "", nil, &doc))
	require.Equal(t, "https://socialhub.city/schemas/hsds-3.0/v1/phone.json", doc["$id"])

	var e errorBody
	require.Equal(t, http.StatusNotFound, do(t, mux, http.MethodGet, "/v1/schemas/spaceship", "", nil, &e))
	require.Equal(t, http.StatusNotFound, do(t, mux, http.MethodGet, "/v1/schemas/service?version=3", "", nil, &e))
	require.Equal(t, http.StatusUnprocessableEntity, do(t, mux, http.MethodGet, "/v1/schemas/service?version=x", "", nil, &e))
	require.Equal(t, []string{"version"}, fields(e.Fields))
}
