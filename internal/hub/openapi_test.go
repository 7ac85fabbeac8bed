package hub_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/csv"
	"socialhub/internal/api"
	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/internal/hub"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
)

// notDocumented are the patterns served but not described by the OpenAPI document, and why.
var notDocumented = map[string]string{
	"/": "the catch-all that answers 404 for every unknown path",
}

// servedRoutes starts the hub (without the demo) and returns the routes its API serves, as hub.Run
// reports them once everything is mounted.
func servedRoutes(t *testing.T) []string {
	t.Helper()
	db := pgtest.NewDB(t, hub.Migrations()...)
	kc := kafkatest.New(t, 1)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = db.URL
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Brokers = kc.Config.Brokers
	cfg.Kafka.TopicPrefix = event.DefaultPrefix
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	routes := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		done <- hub.Run(ctx, cfg, hub.Options{
			Logger: slog.New(slog.DiscardHandler), Registry: connectors.NewRegistry(csv.Kind()),
			Getenv: func(string) string { return "" }, Routes: func(r []string) { routes <- r },
			Started: func(hub.Addrs) { cancel() },
		})
	}()
	var got []string
	select {
	case got = <-routes:
	case err := <-done:
		require.FailNow(t, "hub stopped before mounting its routes", "%v", err)
	case <-time.After(90 * time.Second):
		require.FailNow(t, "hub did not start")
	}
	cancel()
	require.NoError(t, <-done)
	return got
}

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		Parameters      map[string]parameter       `json:"parameters"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type parameter struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type operation struct {
	Summary     string                     `json:"summary"`
	Description string                     `json:"description"`
	Parameters  []parameter                `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    []map[string][]string      `json:"security"`
}

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// docPath turns a ServeMux pattern into its method and OpenAPI path: {$} and {name...} lose their
// marks ("GET /{$}" is "/").
func docPath(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return "", pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = strings.ReplaceAll(path, "...}", "}")
	return strings.ToLower(method), path
}

// TestOpenAPIDescribesWhatIsServed: every route the hub serves is in /openapi.json with its
// method, every operation there is served, and the document holds together.
func TestOpenAPIDescribesWhatIsServed(t *testing.T) {
	t.Parallel()
	routes := servedRoutes(t)
	srv := httptest.NewServer(api.New(api.Options{}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var raw any
	var body json.RawMessage
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.NoError(t, json.Unmarshal(body, &raw))
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Regexp(t, `^3\.0\.\d+$`, doc.OpenAPI)

	served := map[string]bool{}
	for _, p := range routes {
		if _, skip := notDocumented[p]; skip {
			continue
		}
		method, path := docPath(p)
		require.NotEmpty(t, method, "route %q has no method", p)
		served[method+" "+path] = true
		_, ok := doc.Paths[path]
		require.True(t, ok, "route %q is not documented", p)
		_, ok = doc.Paths[path][method]
		require.True(t, ok, "route %q is documented without its method", p)
	}
	for path, item := range doc.Paths {
		for _, m := range methods {
			if _, ok := item[m]; ok {
				require.True(t, served[m+" "+path], "%s %s is documented but not served", strings.ToUpper(m), path)
			}
		}
	}

	// Every $ref resolves.
	for _, ref := range collectRefs(raw) {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if ok {
			require.Contains(t, doc.Components.Schemas, name, "$ref %s", ref)
			continue
		}
		name, ok = strings.CutPrefix(ref, "#/components/parameters/")
		require.True(t, ok, "unexpected $ref %s", ref)
		require.Contains(t, doc.Components.Parameters, name, "$ref %s", ref)
	}

	// Every operation says what it does, answers something, names known security schemes, and
	// declares each of its path's parameters.
	segment := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc.Paths {
		var shared []parameter
		if p, ok := item["parameters"]; ok {
			require.NoError(t, json.Unmarshal(p, &shared))
		}
		for _, m := range methods {
			rawOp, ok := item[m]
			if !ok {
				continue
			}
			var op operation
			require.NoError(t, json.Unmarshal(rawOp, &op), "%s %s", m, path)
			require.NotEmpty(t, op.Summary, "%s %s has no summary", m, path)
			require.NotEmpty(t, op.Responses, "%s %s has no responses", m, path)
			for _, req := range op.Security {
				for scheme := range req {
					require.Contains(t, doc.Components.SecuritySchemes, scheme, "%s %s", m, path)
				}
			}
			declared := map[string]bool{}
			for _, p := range slices.Concat(shared, op.Parameters) {
				if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
					p = doc.Components.Parameters[name]
				}
				if p.In == "path" {
					declared[p.Name] = true
				}
			}
			for _, sm := range segment.FindAllStringSubmatch(path, -1) {
				require.True(t, declared[sm[1]], "%s %s does not declare path parameter %s", m, path, sm[1])
			}
			require.Len(t, declared, len(segment.FindAllString(path, -1)), "%s %s declares a path parameter it has not", m, path)
		}
	}
}

func collectRefs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, collectRefs(c)...)
		}
	case []any:
		for _, c := range x {
			out = append(out, collectRefs(c)...)
		}
	}
	return out
}
