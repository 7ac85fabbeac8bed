package changes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"socialhub/internal/jsonhttp"
)

// Mux is what Mount registers routes on (*api.Server has this method).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Authorize identifies the caller of a request: ok false answers 401. The owner scopes webhook
// subscriptions.
type Authorize func(*http.Request) (owner string, ok bool)

// Feed paging limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// FeedAPIOptions configures the polling and SSE endpoints.
type FeedAPIOptions struct {
	Feed     *Feed
	Notifier *Notifier // wakes streams when the relay publishes; nil: they poll
	// Heartbeat is the interval of SSE comment lines that keep proxies from closing an idle
	// stream (default 15 s).
	Heartbeat time.Duration
	// PollInterval is how often a stream looks for new events without a wake-up (default 1 s).
	PollInterval time.Duration
	// Authorize, if set, must accept the request.
	Authorize Authorize
	Logger    *slog.Logger
}

// FeedAPI serves GET /v1/changes (polling) and GET /v1/changes/stream (Server-Sent Events).
type FeedAPI struct {
	opts  FeedAPIOptions
	log   *slog.Logger
	cache *feedCache
}

// NewFeedAPI returns the feed endpoints.
func NewFeedAPI(opts FeedAPIOptions) *FeedAPI {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FeedAPI{opts: opts, log: log, cache: newFeedCache(opts.Feed, opts.Notifier, opts.PollInterval)}
}

// Mount registers the routes.
func (a *FeedAPI) Mount(m Mux) {
	m.Handle("GET /v1/changes", http.HandlerFunc(a.poll))
	m.Handle("GET /v1/changes/stream", http.HandlerFunc(a.stream))
}

// FeedPage is the answer of GET /v1/changes. Resume with after=NextAfter.
type FeedPage struct {
	Changes   []FeedEvent `json:"changes"`
	NextAfter int64       `json:"next_after"`
	// RetainedAfter is the oldest position one may resume after.
	RetainedAfter int64 `json:"retained_after"`
}

type feedQuery struct {
	after    int64
	hasAfter bool
	limit    int
	filter   Filter
}

func parseFeedQuery(r *http.Request, lastEventID bool) (feedQuery, []FieldError) {
	q := feedQuery{limit: DefaultLimit}
	v := r.URL.Query()
	var errs []FieldError
	rawAfter, field := v.Get("after"), "after"
	if lastEventID {
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			rawAfter, field = id, "Last-Event-ID"
		}
	}
	if rawAfter != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(rawAfter), 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, FieldError{Field: field, Message: "must be a sequence number (a non-negative integer) from a previous change"})
		}
		q.after, q.hasAfter = n, true
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", MaxLimit)})
		}
		q.limit = n
	}
	f, ferrs := ParseFilter(v["types"], v.Get("district"))
	q.filter = f
	return q, append(errs, ferrs...)
}

func (a *FeedAPI) authorized(w http.ResponseWriter, r *http.Request) bool {
	if a.opts.Authorize == nil {
		return true
	}
	if _, ok := a.opts.Authorize(r); !ok {
		writeError(w, http.StatusUnauthorized, "authentication required", nil)
		return false
	}
	return true
}

func (a *FeedAPI) poll(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(w, r) {
		return
	}
	q, errs := parseFeedQuery(r, false)
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid query parameters", errs)
		return
	}
	ctx := r.Context()
	pruned, _, err := a.opts.Feed.Bounds(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !q.hasAfter {
		q.after = pruned // from the oldest event still retained
	}
	evs, err := a.opts.Feed.Read(ctx, q.after, q.limit, q.filter)
	if errors.Is(err, ErrGone) {
		a.gone(w, r, q.after)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	page := FeedPage{Changes: evs, NextAfter: q.after, RetainedAfter: pruned}
	if page.Changes == nil {
		page.Changes = []FeedEvent{}
	}
	if n := len(evs); n > 0 {
		page.NextAfter = evs[n-1].Seq
	}
	jsonhttp.Write(w, http.StatusOK, page)
}

func (a *FeedAPI) gone(w http.ResponseWriter, r *http.Request, after int64) {
	pruned, _, err := a.opts.Feed.Bounds(r.Context())
	msg := fmt.Sprintf("sequence %d is older than the change feed's retention", after)
	if err == nil {
		msg += fmt.Sprintf(": the oldest position to resume after is %d; re-read the catalog (HSDS API or the catalog topic) and resume from there", pruned)
	}
	writeError(w, http.StatusGone, msg, []FieldError{{Field: "after", Message: "older than the retained change feed"}})
}

func (a *FeedAPI) internal(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	a.log.ErrorContext(r.Context(), "error serving change feed", slog.Any("error", err))
	writeError(w, http.StatusInternalServerError, "internal error", nil)
}

// stream serves Server-Sent Events: one event per change, id = its seq, data = the FeedEvent.
// It resumes after Last-Event-ID (a reconnecting EventSource sends it) or ?after=; with neither,
// it starts at the current end of the feed.
func (a *FeedAPI) stream(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(w, r) {
		return
	}
	q, errs := parseFeedQuery(r, true)
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid query parameters", errs)
		return
	}
	ctx := r.Context()
	pruned, last, err := a.opts.Feed.Bounds(ctx)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if !q.hasAfter {
		q.after = last
	}
	if q.after < pruned {
		a.gone(w, r, q.after) // before streaming: a plain 410 the client can read
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: 2000\n\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	heartbeat := time.NewTicker(a.opts.Heartbeat)
	defer heartbeat.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for {
		wake := a.opts.Notifier.C() // taken before reading: a publish in between still wakes us
		for {
			evs, err := a.cache.read(ctx, q.after, DefaultLimit, q.filter)
			if errors.Is(err, ErrGone) {
				// The client fell behind retention while connected.
				_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(map[string]string{
					"error": fmt.Sprintf("sequence %d is older than the change feed's retention; re-read the catalog and resume from a retained position", q.after),
				}))
				_ = rc.Flush()
				return
			}
			if err != nil {
				if ctx.Err() == nil {
					a.log.ErrorContext(ctx, "error reading change feed for a stream", slog.Any("error", err))
				}
				return // the client reconnects with Last-Event-ID
			}
			if len(evs) == 0 {
				break
			}
			for i := range evs {
				frame := evs[i].frame
				if frame == nil {
					buf.Reset()
					writeFrame(&buf, enc, &evs[i])
					frame = buf.Bytes()
				}
				if _, err := w.Write(frame); err != nil {
					return
				}
				// Flushed per event: a consumer sees each change as soon as it is read.
				if err := rc.Flush(); err != nil {
					return
				}
				q.after = evs[i].Seq
			}
			heartbeat.Reset(a.opts.Heartbeat) // events keep the stream alive too
			if len(evs) < DefaultLimit {
				break
			}
		}
		poll.Reset(a.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// writeFrame writes an event as an SSE frame: id = its seq, data = its JSON on one line.
func writeFrame(buf *bytes.Buffer, enc *json.Encoder, e *FeedEvent) {
	buf.WriteString("id: ")
	buf.WriteString(strconv.FormatInt(e.Seq, 10))
	buf.WriteString("\ndata: ")
	_ = enc.Encode(e) // ends with "\n"; JSON has no raw newlines; a FeedEvent always encodes
	buf.WriteString("\n")
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps of strings always encode
	return b
}

type errorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string, fields []FieldError) {
	jsonhttp.Write(w, status, errorBody{Error: msg, Fields: fields})
}
