package quality

import (
	"errors"
	"log/slog"
	"net/http"

	"socialhub/internal/jsonhttp"
)

// Handler serves the figures: GET /v1/quality (every source) and GET /v1/quality/{source}.
type Handler struct {
	store *Store
	log   *slog.Logger
}

// NewHandler returns the handler of store.
func NewHandler(store *Store) *Handler { return &Handler{store: store, log: store.opts.Logger} }

// Mount registers the routes on m (*api.Server has this Handle).
func (h *Handler) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	m.Handle("GET /v1/quality", http.HandlerFunc(h.list))
	m.Handle("GET /v1/quality/{source}", http.HandlerFunc(h.get))
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	qs, err := h.store.Qualities(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"sources": qs})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	q, err := h.store.SourceQuality(r.Context(), r.PathValue("source"))
	if errors.Is(err, ErrUnknownSource) {
		jsonhttp.Write(w, http.StatusNotFound, errorBody{Error: err.Error()})
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, q)
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	h.log.Error("quality: request failed", "route", r.Pattern, "error", err)
	jsonhttp.Write(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
}

type errorBody struct {
	Error string `json:"error"`
}
