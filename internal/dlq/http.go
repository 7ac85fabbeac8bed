package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"socialhub/internal/jsonhttp"
)

// MaxReplayIDs bounds the ids of one replay request.
const MaxReplayIDs = 10000

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	Store    *Store
	Replayer *Replayer
	// AdminToken, when set, is the bearer token every request needs (dead letters hold whole
	// records); without it only requests from this machine are served, as for the hub's other
	// operator endpoints.
	AdminToken string
	Logger     *slog.Logger
}

// Handler serves the dead letters under /v1/dlq.
type Handler struct {
	opts HandlerOptions
}

// NewHandler returns the handler.
func NewHandler(opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Handler{opts: opts}
}

// Mount registers the endpoints on m (an *api.Server or an *http.ServeMux).
func (h *Handler) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	m.Handle("GET /v1/dlq", h.operator(h.list))
	m.Handle("GET /v1/dlq/counts", h.operator(h.counts))
	m.Handle("GET /v1/dlq/{id}", h.operator(h.get))
	m.Handle("POST /v1/dlq/replay", h.operator(h.replay))
}

// errorBody is the hub's error shape.
type errorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields,omitempty"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Source: q.Get("source"), Reason: q.Get("reason"), Stage: q.Get("stage"), Status: q.Get("status"), After: q.Get("after")}
	var bad []FieldError
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			bad = append(bad, FieldError{"limit", fmt.Sprintf("must be a whole number between 1 and %d", MaxLimit)})
		} else {
			f.Limit = n
		}
	}
	if len(bad) > 0 {
		jsonhttp.Write(w, http.StatusBadRequest, errorBody{Error: ErrInvalidFilter.Error(), Fields: bad})
		return
	}
	p, err := h.opts.Store.List(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, p)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	e, err := h.opts.Store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, e)
}

func (h *Handler) counts(w http.ResponseWriter, r *http.Request) {
	sources, reasons, err := h.opts.Store.Counts(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if sources == nil {
		sources = []SourceCount{}
	}
	if reasons == nil {
		reasons = []ReasonCount{}
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"sources": sources, "reasons": reasons})
}

func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	var sel Selection
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sel); err != nil {
		jsonhttp.Write(w, http.StatusBadRequest, errorBody{Error: "the body must be a JSON object {\"ids\": [...]} or {\"source\": \"...\"}",
			Fields: []FieldError{{"(body)", err.Error()}}})
		return
	}
	var bad []FieldError
	switch {
	case len(sel.IDs) == 0 && sel.Source == "":
		bad = append(bad, FieldError{"ids", "give the ids to replay, or a source"}, FieldError{"source", "give a source, or the ids to replay"})
	case len(sel.IDs) > 0 && sel.Source != "":
		bad = append(bad, FieldError{"source", "give either ids or a source, not both"})
	case len(sel.IDs) > MaxReplayIDs:
		bad = append(bad, FieldError{"ids", fmt.Sprintf("at most %d ids per request", MaxReplayIDs)})
	}
	for i, id := range sel.IDs {
		if strings.TrimSpace(id) == "" {
			bad = append(bad, FieldError{fmt.Sprintf("ids[%d]", i), "empty id"})
		}
	}
	if len(bad) > 0 {
		jsonhttp.Write(w, http.StatusBadRequest, errorBody{Error: ErrInvalidSelection.Error(), Fields: bad})
		return
	}
	res, err := h.opts.Replayer.Replay(r.Context(), sel)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		idx := map[string]int{}
		for i, id := range sel.IDs {
			if _, ok := idx[id]; !ok {
				idx[id] = i
			}
		}
		fields := make([]FieldError, len(nf.IDs))
		for i, id := range nf.IDs {
			fields[i] = FieldError{fmt.Sprintf("ids[%d]", idx[id]), "no dead letter " + strconv.Quote(id)}
		}
		jsonhttp.Write(w, http.StatusNotFound, errorBody{Error: "nothing was replayed: some ids are unknown", Fields: fields})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusAccepted, res)
}

// fail answers an error: 4xx for what the request got wrong, 500 (logged) for the rest.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *FilterError
	switch {
	case errors.As(err, &fe):
		jsonhttp.Write(w, http.StatusBadRequest, errorBody{Error: ErrInvalidFilter.Error(), Fields: fe.Fields})
	case errors.Is(err, ErrNotFound):
		jsonhttp.Write(w, http.StatusNotFound, errorBody{Error: err.Error()})
	case errors.Is(err, ErrInvalidSelection):
		jsonhttp.Write(w, http.StatusBadRequest, errorBody{Error: err.Error()})
	case errors.Is(err, ErrSourceBusy):
		jsonhttp.Write(w, http.StatusConflict, errorBody{Error: err.Error()})
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		h.opts.Logger.Error("dlq request failed", "route", r.Pattern, "error", err)
		jsonhttp.Write(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
	}
}

// operator admits an operator's request only (jsonhttp.OperatorAllowed): dead letters hold whole
// records.
func (h *Handler) operator(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !jsonhttp.OperatorAllowed(h.opts.AdminToken, r) {
			jsonhttp.RefuseOperator(w, h.opts.AdminToken)
			return
		}
		next(w, r)
	})
}
