package api

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"socialhub/internal/catalog"
	"socialhub/internal/jsonhttp"
	"socialhub/internal/web"
)

// Profile is the URL of the HSDS profile the API serves.
const Profile = "https://socialhub.city/schemas/hsds-3.0/"

// hsdsVersion is the HSDS version of the API.
const hsdsVersion = "3.0"

//go:embed openapi.json
var openAPI []byte

// Options configures the server.
type Options struct {
	Catalog *catalog.Store
	Logger  *slog.Logger
	// Ready reports readiness for /readyz: 200 when it returns nil, 503 with the error otherwise.
	// Nil means always ready.
	Ready func(ctx context.Context) error
	// Gatherer is served on /metrics; without one the route is absent.
	Gatherer prometheus.Gatherer
	// Registerer receives the HTTP request metrics; without one they are not collected.
	Registerer prometheus.Registerer
	Version    string // the hub's version
	// OpsOnly serves only /healthz, /readyz and /metrics: a process without the api role still
	// answers its probes and scrapes.
	OpsOnly bool
	// Sources serves /v1/sources; nil in a process that runs no connectors.
	Sources Sources
	// AdminToken, when set, is the bearer token operator requests (starting a run) must carry;
	// when empty they are accepted from loopback only.
	AdminToken string
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu       sync.Mutex
	patterns []string // every pattern registered, for Routes
}

// New returns the server with its routes.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer != nil {
		s.requests = register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "socialhub_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}))
		s.duration = register(opts.Registerer, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "socialhub_http_request_duration_seconds", Help: "HTTP request durations by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}))
	}
	s.handleFunc("GET /healthz", s.healthz)
	s.handleFunc("GET /readyz", s.readyz)
	if opts.Gatherer != nil {
		s.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	s.handleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such resource", nil)
	})
	s.handler = s.observe(s.mux)
	if opts.OpsOnly {
		return s
	}
	s.handleFunc("GET /{$}", s.meta)
	s.handleFunc("GET /services", s.listServices)
	s.handleFunc("GET /services/{id}", s.getService)
	s.handleFunc("GET /organizations", s.listOrganizations)
	s.handleFunc("GET /organizations/{id}", s.getOrganization)
	s.handleFunc("GET /openapi.json", s.openAPI)
	s.handleFunc("GET /v1/sources", s.listSources)
	s.handleFunc("GET /v1/sources/{name}", s.getSource)
	s.handleFunc("POST /v1/sources/{name}/runs", s.startRun)
	s.handleFunc("GET /v1/sources/{name}/runs/{id}", s.getRun)
	return s
}

// register registers c, or returns the collector already registered under its name (two servers
// on one registry, as in tests).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error, like prometheus.MustRegister's
	}
	return c
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Handle mounts another package's handler (Go 1.22 ServeMux pattern, e.g. "POST /v1/listings").
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patterns = append(s.patterns, pattern)
}

func (s *Server) handleFunc(pattern string, h http.HandlerFunc) { s.Handle(pattern, h) }

// Routes returns every pattern registered, the server's own and those mounted by other packages,
// sorted: a test compares them with the OpenAPI document so that it describes what is served.
func (s *Server) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.patterns)
	slices.Sort(out)
	return out
}

// observe logs and counts every request. It logs the path without the query string, which may
// carry personal data.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		route := r.Pattern // set by the ServeMux on this request
		if route == "" {
			route = "unmatched"
		}
		if s.requests != nil {
			s.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
			s.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		}
		// The route (the matched pattern), never the path: a client may put a national id where a
		// pseudonym or a service id belongs, and the log must not keep it.
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", rec.status), slog.Duration("duration", elapsed))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushing for streaming routes).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) meta(w http.ResponseWriter, r *http.Request) {
	// A person's browser gets the services navigator; API clients keep the HSDS root.
	w.Header().Add("Vary", "Accept")
	if web.WantsHTML(r) {
		http.Redirect(w, r, web.NavigatorPath, http.StatusFound)
		return
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	jsonhttp.Write(w, http.StatusOK, map[string]string{
		"version": hsdsVersion, "profile": Profile,
		"openapi_url": scheme + "://" + r.Host + "/openapi.json", "hub_version": s.opts.Version,
	})
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(openAPI)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	jsonhttp.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
	}
	jsonhttp.Write(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r)
	f := catalog.ServiceFilter{
		Search: q.search, TaxonomyTermID: q.taxonomyTermID, OrganizationID: q.organizationID,
		ModifiedAfter: q.modifiedAfter, Page: q.page, PerPage: q.perPage,
	}
	if q.badRequest(w) {
		return
	}
	p, err := s.opts.Catalog.ListServices(r.Context(), f)
	s.respond(w, r, p, err)
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r)
	if q.badRequest(w) {
		return
	}
	p, err := s.opts.Catalog.ListOrganizations(r.Context(), catalog.OrganizationFilter{
		Search: q.search, ModifiedAfter: q.modifiedAfter, Page: q.page, PerPage: q.perPage,
	})
	s.respond(w, r, p, err)
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	doc, err := s.opts.Catalog.GetService(r.Context(), r.PathValue("id"))
	s.respond(w, r, doc, err)
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request) {
	doc, err := s.opts.Catalog.GetOrganization(r.Context(), r.PathValue("id"))
	s.respond(w, r, doc, err)
}

// respond writes v, or the error: 301 to the winner for an id that merged into another, 404 for
// catalog.ErrNotFound, 500 (logged, details withheld) for anything else.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, v any, err error) {
	var moved *catalog.RedirectError
	switch {
	case err == nil:
		jsonhttp.Write(w, http.StatusOK, v)
	case errors.As(err, &moved):
		w.Header().Set("Location", path.Join(path.Dir(r.URL.Path), moved.To.String()))
		writeError(w, http.StatusMovedPermanently, "merged into "+moved.To.String(), nil)
	case errors.Is(err, catalog.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found", nil)
	case r.Context().Err() != nil:
		// The client went away; nobody reads the response.
	default:
		s.log.ErrorContext(r.Context(), "error serving request", slog.String("route", r.Pattern), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "internal error", nil)
	}
}

// fieldError is an invalid query parameter.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type errorBody struct {
	Error  string       `json:"error"`
	Fields []fieldError `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string, fields []fieldError) {
	jsonhttp.Write(w, status, errorBody{Error: msg, Fields: fields})
}
