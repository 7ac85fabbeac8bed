package changes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"socialhub/internal/jsonhttp"
)

// SubscriptionAPIOptions configures the webhook subscription endpoints.
type SubscriptionAPIOptions struct {
	Subscriptions *Subscriptions
	// Owner identifies the subscriber; subscriptions are scoped by it. Required: without an
	// identity no subscription can be made.
	Owner Authorize
	// RotationGrace is how long the previous secret keeps signing after a rotation (default 24 h);
	// a request may ask for less with {"grace_seconds": N}.
	RotationGrace time.Duration
	Logger        *slog.Logger
}

// SubscriptionAPI serves /v1/subscriptions.
type SubscriptionAPI struct {
	opts SubscriptionAPIOptions
	log  *slog.Logger
}

// NewSubscriptionAPI returns the subscription endpoints.
func NewSubscriptionAPI(opts SubscriptionAPIOptions) *SubscriptionAPI {
	if opts.RotationGrace <= 0 {
		opts.RotationGrace = 24 * time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SubscriptionAPI{opts: opts, log: log}
}

// Mount registers the routes.
func (a *SubscriptionAPI) Mount(m Mux) {
	m.Handle("POST /v1/subscriptions", a.owned(a.create))
	m.Handle("GET /v1/subscriptions", a.owned(a.list))
	m.Handle("GET /v1/subscriptions/{id}", a.owned(a.get))
	m.Handle("DELETE /v1/subscriptions/{id}", a.owned(a.delete))
	m.Handle("POST /v1/subscriptions/{id}/rotate-secret", a.owned(a.rotate))
	m.Handle("POST /v1/subscriptions/{id}/resume", a.owned(a.resume))
}

func (a *SubscriptionAPI) owned(h func(w http.ResponseWriter, r *http.Request, owner string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Owner == nil {
			writeError(w, http.StatusUnauthorized, "authentication required", nil)
			return
		}
		owner, ok := a.opts.Owner(r)
		if !ok || owner == "" {
			writeError(w, http.StatusUnauthorized, "authentication required", nil)
			return
		}
		h(w, r, owner)
	})
}

// SubscriptionWithSecret is the answer of create and rotate-secret: the only time the secret is shown.
type SubscriptionWithSecret struct {
	Subscription
	Secret string `json:"secret"`
}

type createRequest struct {
	URL      string          `json:"url"`
	Types    json.RawMessage `json:"types"` // a list or a comma-separated string
	District string          `json:"district"`
}

func (a *SubscriptionAPI) create(w http.ResponseWriter, r *http.Request, owner string) {
	var req createRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var fields []FieldError
	if err := ValidateURL(req.URL); err != nil {
		fields = append(fields, FieldError{Field: "url", Message: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")})
	}
	var types []string
	if len(req.Types) > 0 && string(req.Types) != "null" {
		var s string
		if json.Unmarshal(req.Types, &types) != nil {
			if json.Unmarshal(req.Types, &s) != nil {
				fields = append(fields, FieldError{Field: "types", Message: "must be a list of strings or a comma-separated string"})
			}
			types = []string{s}
		}
	}
	f, ferrs := ParseFilter(types, req.District)
	fields = append(fields, ferrs...)
	if len(fields) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid subscription", fields)
		return
	}
	sub, secret, err := a.opts.Subscriptions.Create(r.Context(), owner, req.URL, f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/subscriptions/"+sub.ID)
	jsonhttp.Write(w, http.StatusCreated, SubscriptionWithSecret{Subscription: sub, Secret: secret})
}

func (a *SubscriptionAPI) list(w http.ResponseWriter, r *http.Request, owner string) {
	subs, err := a.opts.Subscriptions.List(r.Context(), owner)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"subscriptions": subs})
}

func (a *SubscriptionAPI) get(w http.ResponseWriter, r *http.Request, owner string) {
	sub, err := a.opts.Subscriptions.Get(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, sub)
}

func (a *SubscriptionAPI) delete(w http.ResponseWriter, r *http.Request, owner string) {
	if err := a.opts.Subscriptions.Delete(r.Context(), owner, r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *SubscriptionAPI) rotate(w http.ResponseWriter, r *http.Request, owner string) {
	var req struct {
		GraceSeconds *int64 `json:"grace_seconds"`
	}
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	grace := a.opts.RotationGrace
	if req.GraceSeconds != nil {
		g := time.Duration(*req.GraceSeconds) * time.Second
		if *req.GraceSeconds < 0 || g > a.opts.RotationGrace {
			writeError(w, http.StatusUnprocessableEntity, "invalid rotation", []FieldError{{Field: "grace_seconds",
				Message: fmt.Sprintf("must be from 0 to %d", int64(a.opts.RotationGrace/time.Second))}})
			return
		}
		grace = g
	}
	sub, secret, err := a.opts.Subscriptions.RotateSecret(r.Context(), owner, r.PathValue("id"), grace)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, SubscriptionWithSecret{Subscription: sub, Secret: secret})
}

func (a *SubscriptionAPI) resume(w http.ResponseWriter, r *http.Request, owner string) {
	sub, err := a.opts.Subscriptions.Resume(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, sub)
}

func (a *SubscriptionAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "subscription not found", nil)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, err.Error(), nil)
	case r.Context().Err() != nil:
	default:
		a.log.ErrorContext(r.Context(), "error serving subscriptions", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "internal error", nil)
	}
}

// maxBody bounds a request body.
const maxBody = 64 << 10

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be a JSON object: "+err.Error(), nil)
		return false
	}
	return true
}
