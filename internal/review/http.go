package review

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/catalog"
	"socialhub/internal/jsonhttp"
)

// Outbox takes the changes of a decision inside its transaction (*changes.Outbox).
type Outbox interface {
	Append(ctx context.Context, tx pgx.Tx, chs []catalog.Change) error
}

// Options configures the API.
type Options struct {
	Pool    *pgxpool.Pool
	Catalog *catalog.Store
	Outbox  Outbox
	// Authorize, if set, must accept every request (the operators' guard): false answers 401.
	Authorize func(*http.Request) bool
	// Reviewer names who decided, for the record ("" when unknown); default the
	// X-Socialhub-Reviewer header.
	Reviewer func(*http.Request) string
	Logger   *slog.Logger
}

// API serves /v1/review.
type API struct{ opts Options }

// New returns the API.
func New(opts Options) (*API, error) {
	if opts.Pool == nil || opts.Catalog == nil || opts.Outbox == nil {
		return nil, ErrNoPool
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Reviewer == nil {
		opts.Reviewer = func(r *http.Request) string { return r.Header.Get("X-Socialhub-Reviewer") }
	}
	return &API{opts: opts}, nil
}

// Mount registers the endpoints.
func (a *API) Mount(m interface {
	Handle(pattern string, h http.Handler)
}) {
	m.Handle("GET /v1/review", a.guard(a.list))
	m.Handle("GET /v1/review/{id}", a.guard(a.show))
	for _, d := range []string{catalog.DecideMerge, catalog.DecideSplit, catalog.DecideDismiss} {
		m.Handle("POST /v1/review/{id}/"+d, a.guard(func(w http.ResponseWriter, r *http.Request) { a.decide(w, r, d) }))
	}
}

func (a *API) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Authorize != nil && !a.opts.Authorize(r) {
			writeError(w, http.StatusUnauthorized, "unauthorized", nil)
			return
		}
		h(w, r)
	})
}

// ListAnswer is the answer of GET /v1/review.
type ListAnswer struct {
	Items      []catalog.ReviewItem `json:"items"`
	TotalItems int                  `json:"total_items"`
	Page       int                  `json:"page"`
	PerPage    int                  `json:"per_page"`
}

var statuses = map[string]bool{"": true, catalog.ReviewOpen: true, catalog.ReviewMerged: true,
	catalog.ReviewSplit: true, catalog.ReviewDismissed: true, "all": true}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []FieldError
	status := q.Get("status")
	if !statuses[status] {
		bad = append(bad, FieldError{"status", "one of open, merged, split, dismissed, all"})
	}
	switch status {
	case "":
		status = catalog.ReviewOpen
	case "all":
		status = ""
	}
	page, perPage := 1, catalog.DefaultPerPage
	for _, p := range []struct {
		name string
		v    *int
		max  int
	}{{"page", &page, 1 << 30}, {"per_page", &perPage, catalog.MaxPerPage}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > p.max {
				bad = append(bad, FieldError{p.name, fmt.Sprintf("a whole number from 1 to %d", p.max)})
				continue
			}
			*p.v = n
		}
	}
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, "bad query", bad)
		return
	}
	items, total, err := a.opts.Catalog.ListReview(r.Context(), status, page, perPage)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, ListAnswer{Items: items, TotalItems: total, Page: page, PerPage: perPage})
}

func (a *API) itemID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "bad review item id", []FieldError{{"id", "a positive whole number"}})
		return 0, false
	}
	return id, true
}

func (a *API) show(w http.ResponseWriter, r *http.Request) {
	id, ok := a.itemID(w, r)
	if !ok {
		return
	}
	it, err := a.opts.Catalog.GetReview(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such review item", nil)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, it)
}

// DecideAnswer is the answer of a decision: the item after it, and the changes it made.
type DecideAnswer struct {
	Item    catalog.ReviewItem `json:"item"`
	Changes int                `json:"changes"`
}

func (a *API) decide(w http.ResponseWriter, r *http.Request, decision string) {
	id, ok := a.itemID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	tx, err := a.opts.Pool.Begin(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	defer func() { _ = tx.Rollback(ctx) }()
	chs, err := a.opts.Catalog.Decide(ctx, tx, id, decision, a.opts.Reviewer(r))
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such review item", nil)
		return
	case errors.Is(err, catalog.ErrBadDecision):
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	// The decision and its changes commit together: subscribers learn of every merge and split.
	if err := a.opts.Outbox.Append(ctx, tx, chs); err != nil {
		a.internal(w, r, err)
		return
	}
	if err := tx.Commit(ctx); err != nil {
		a.internal(w, r, err)
		return
	}
	it, err := a.opts.Catalog.GetReview(ctx, id)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, DecideAnswer{Item: it, Changes: len(chs)})
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	a.opts.Logger.ErrorContext(r.Context(), "error serving review request", slog.String("path", r.URL.Path), slog.Any("error", err))
	writeError(w, http.StatusInternalServerError, "internal error", nil)
}

// FieldError is an invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type errorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string, fields []FieldError) {
	jsonhttp.Write(w, status, errorBody{Error: msg, Fields: fields})
}
