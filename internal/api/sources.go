package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"socialhub/connectors"
	"socialhub/internal/jsonhttp"
)

// Sources is what the API needs of the connectors' side: status, and runs on demand.
type Sources interface {
	Status(ctx context.Context) ([]SourceStatus, error)
	// RunNow starts a run and returns its id; errors match ErrUnknownSource or ErrSourceBusy.
	RunNow(name string, full bool) (int64, error)
	Run(ctx context.Context, id int64) (connectors.RunInfo, error)
}

var (
	// ErrUnknownSource: no enabled source by that name (404).
	ErrUnknownSource = errors.New("unknown source")
	// ErrSourceBusy: the source is running already (409).
	ErrSourceBusy = errors.New("source is already running")
	// ErrNotRunningConnectors: this process does not run the connectors now (503): it has not the
	// connectors role, or another process holds their lease.
	ErrNotRunningConnectors = errors.New("this process does not run the connectors; ask the process that does (socialhub serve --roles=connectors)")
)

// SourceStatus is one source as GET /v1/sources shows it.
type SourceStatus struct {
	Name     string     `json:"name"`
	Kind     string     `json:"kind"`
	Schedule string     `json:"schedule,omitempty"`
	Running  bool       `json:"running"`
	NextRun  *time.Time `json:"next_run,omitempty"`
	// Cursor is the saved position: its JSON when it is JSON, else its bytes quoted.
	Cursor  any      `json:"cursor,omitempty"`
	LastRun *RunView `json:"last_run,omitempty"`
	// Quality is what validation made of the source's records and how complete its catalog records
	// are (read, valid, rejected by field, normalized fields, shares with phone, address, hours and
	// coordinates); absent before its first validated record.
	Quality any `json:"quality,omitempty"`
}

// RunView is a run with its duration in seconds.
type RunView struct {
	connectors.RunInfo
	DurationSeconds float64 `json:"duration_seconds"`
}

// NewRunView adds the duration to a run.
func NewRunView(r connectors.RunInfo, now time.Time) *RunView {
	return &RunView{RunInfo: r, DurationSeconds: r.Duration(now).Seconds()}
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request) {
	if s.opts.Sources == nil {
		writeError(w, http.StatusNotFound, "this process runs no connectors", nil)
		return
	}
	st, err := s.opts.Sources.Status(r.Context())
	if err != nil {
		s.respond(w, r, nil, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"sources": st})
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request) {
	if s.opts.Sources == nil {
		writeError(w, http.StatusNotFound, "this process runs no connectors", nil)
		return
	}
	st, err := s.opts.Sources.Status(r.Context())
	if err != nil {
		s.respond(w, r, nil, err)
		return
	}
	for _, x := range st {
		if x.Name == r.PathValue("name") {
			jsonhttp.Write(w, http.StatusOK, x)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no source named "+strconv.Quote(r.PathValue("name")), nil)
}

// startRun is POST /v1/sources/{name}/runs[?full=true]: 202 with the run, 404 for an unknown
// source, 409 while it runs.
func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	if !s.operator(w, r) {
		return
	}
	if s.opts.Sources == nil {
		writeError(w, http.StatusNotFound, "this process runs no connectors", nil)
		return
	}
	full := false
	if v := r.URL.Query().Get("full"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid query parameters", []fieldError{{Field: "full", Message: "must be true or false"}})
			return
		}
		full = b
	}
	id, err := s.opts.Sources.RunNow(r.PathValue("name"), full)
	switch {
	case errors.Is(err, ErrUnknownSource):
		writeError(w, http.StatusNotFound, err.Error(), nil)
		return
	case errors.Is(err, ErrSourceBusy):
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	case errors.Is(err, ErrNotRunningConnectors):
		writeError(w, http.StatusServiceUnavailable, ErrNotRunningConnectors.Error(), nil)
		return
	case err != nil:
		s.respond(w, r, nil, err)
		return
	}
	run, err := s.opts.Sources.Run(r.Context(), id)
	if err != nil {
		s.respond(w, r, nil, err)
		return
	}
	w.Header().Set("Location", "/v1/sources/"+r.PathValue("name")+"/runs/"+strconv.FormatInt(id, 10))
	jsonhttp.Write(w, http.StatusAccepted, NewRunView(run, time.Now()))
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	if s.opts.Sources == nil {
		writeError(w, http.StatusNotFound, "this process runs no connectors", nil)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "not found", nil)
		return
	}
	run, err := s.opts.Sources.Run(r.Context(), id)
	if err != nil || run.Source != r.PathValue("name") {
		writeError(w, http.StatusNotFound, "not found", nil)
		return
	}
	jsonhttp.Write(w, http.StatusOK, NewRunView(run, time.Now()))
}

// operator admits a request that may change what the hub does (jsonhttp.OperatorAllowed), or
// answers the refusal.
func (s *Server) operator(w http.ResponseWriter, r *http.Request) bool {
	if jsonhttp.OperatorAllowed(s.opts.AdminToken, r) {
		return true
	}
	jsonhttp.RefuseOperator(w, s.opts.AdminToken)
	return false
}
