package listings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"socialhub/connectors"
	"socialhub/internal/clients"
	"socialhub/internal/config"
	"socialhub/internal/jsonhttp"
)

// HSDSKind is the connector kind a registered feed runs as.
const HSDSKind = "hsds"

// SourceOf is the hsds source a feed runs as.
func SourceOf(f Feed) (config.Source, error) {
	var node yaml.Node
	if err := node.Encode(map[string]any{"base_url": f.URL}); err != nil {
		return config.Source{}, fmt.Errorf("error building options of feed %s: %w", f.ID, err)
	}
	return config.Source{Name: f.Source, Kind: HSDSKind, Schedule: f.Schedule, Options: node}, nil
}

// FeedView is a feed with its last run (GET /v1/feeds).
type FeedView struct {
	Feed
	LastRun *connectors.RunInfo `json:"last_run,omitempty"`
}

type feedRequest struct {
	URL      string `json:"url"`
	Schedule string `json:"schedule"`
}

func (a *API) addFeed(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, _ := clients.FromContext(ctx)
	var req feedRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a feed: "+err.Error(), nil)
		return
	}
	id := uuid.NewString()
	f := Feed{ID: id, ClientID: c.ID, Source: "feed-" + strings.ReplaceAll(id, "-", "")[:16], URL: strings.TrimSpace(req.URL),
		Schedule: strings.TrimSpace(req.Schedule), CreatedAt: a.opts.Now().UTC().Truncate(time.Microsecond)}
	if f.Schedule == "" {
		f.Schedule = a.opts.FeedSchedule
	}
	if fields := a.checkFeed(f); len(fields) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "the feed cannot be registered", fields)
		return
	}
	src, err := SourceOf(f)
	if err == nil && a.opts.CheckSource != nil {
		err = a.opts.CheckSource(src)
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "the feed cannot be registered", []clients.FieldError{{Field: "url", Message: err.Error()}})
		return
	}
	f, created, err := a.opts.Store.AddFeed(ctx, f)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if created && a.opts.Scheduler != nil {
		if src, err = SourceOf(f); err == nil {
			err = a.opts.Scheduler.AddSource(src)
		}
		if err != nil {
			// FeedSync schedules it on its next pass.
			a.log.WarnContext(ctx, "a registered feed is not scheduled yet", "feed", f.ID, "error", err)
		}
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/feeds/"+f.ID)
	jsonhttp.Write(w, status, FeedView{Feed: f})
}

func (a *API) checkFeed(f Feed) []clients.FieldError {
	var out []clients.FieldError
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		out = append(out, clients.FieldError{Field: "url", Message: "an http or https URL of the feed's API root (/services is under it) is required"})
	}
	sch, err := cron.ParseStandard(f.Schedule)
	if err != nil {
		out = append(out, clients.FieldError{Field: "schedule", Message: err.Error()})
	} else {
		// Two consecutive runs tell the interval of any cron expression closely enough.
		first := sch.Next(a.opts.Now())
		if sch.Next(first).Sub(first) < a.opts.MinFeedInterval {
			out = append(out, clients.FieldError{Field: "schedule", Message: fmt.Sprintf("runs more often than every %s", a.opts.MinFeedInterval)})
		}
	}
	return out
}

func (a *API) listFeeds(w http.ResponseWriter, r *http.Request) {
	c, _ := clients.FromContext(r.Context())
	feeds, err := a.opts.Store.Feeds(r.Context(), c.ID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	views, err := a.views(r.Context(), feeds)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, struct {
		Items []FeedView `json:"items"`
	}{views})
}

func (a *API) views(ctx context.Context, feeds []Feed) ([]FeedView, error) {
	out := make([]FeedView, len(feeds))
	var runs map[string]connectors.RunInfo
	if a.opts.Runs != nil && len(feeds) > 0 {
		last, err := a.opts.Runs.LastRuns(ctx)
		if err != nil {
			return nil, err
		}
		runs = make(map[string]connectors.RunInfo, len(last))
		for _, r := range last {
			runs[r.Source] = r
		}
	}
	for i, f := range feeds {
		out[i].Feed = f
		if r, ok := runs[f.Source]; ok {
			out[i].LastRun = &r
		}
	}
	return out, nil
}

// ownFeed answers the path's feed if it is the client's: 404 when there is none, 403 (audited)
// when it is another's.
func (a *API) ownFeed(w http.ResponseWriter, r *http.Request) (Feed, bool) {
	c, _ := clients.FromContext(r.Context())
	f, err := a.opts.Store.Feed(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no feed "+r.PathValue("id"), nil)
		return Feed{}, false
	case err != nil:
		a.unavailable(w, r, err)
		return Feed{}, false
	case f.ClientID != c.ID:
		a.opts.Guard.Refuse(w, r, clients.Refusal{Status: http.StatusForbidden, Action: ActionFeed,
			Reason: "feed " + f.ID + " belongs to another organization"})
		return Feed{}, false
	}
	return f, true
}

func (a *API) getFeed(w http.ResponseWriter, r *http.Request) {
	f, ok := a.ownFeed(w, r)
	if !ok {
		return
	}
	views, err := a.views(r.Context(), []Feed{f})
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, views[0])
}

func (a *API) deleteFeed(w http.ResponseWriter, r *http.Request) {
	f, ok := a.ownFeed(w, r)
	if !ok {
		return
	}
	if err := a.opts.Store.DeleteFeed(r.Context(), f.ID); err != nil {
		a.unavailable(w, r, err)
		return
	}
	if a.opts.Scheduler != nil {
		a.opts.Scheduler.RemoveSource(f.Source)
	}
	w.WriteHeader(http.StatusNoContent)
}

// FeedSync hands the registered feeds to the scheduler of the process that runs the connectors:
// at start, then every interval, it adds the new ones and removes the deleted ones.
type FeedSync struct {
	store    *Store
	sched    Scheduler
	interval time.Duration
	log      *slog.Logger
	known    map[string]Feed // by source name: what this sync handed over
}

// NewFeedSync returns the sync (interval default 30 s).
func NewFeedSync(store *Store, sched Scheduler, interval time.Duration, log *slog.Logger) *FeedSync {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FeedSync{store: store, sched: sched, interval: interval, log: log, known: map[string]Feed{}}
}

// Run syncs until ctx ends.
func (s *FeedSync) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot sync the registered feeds", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync makes the scheduler hold exactly the registered feeds (of those this sync handed over).
func (s *FeedSync) Sync(ctx context.Context) error {
	feeds, err := s.store.Feeds(ctx, "")
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(feeds))
	var errs []error
	for _, f := range feeds {
		seen[f.Source] = true
		if k, ok := s.known[f.Source]; ok && k.URL == f.URL && k.Schedule == f.Schedule {
			continue
		}
		src, err := SourceOf(f)
		if err == nil {
			err = s.sched.AddSource(src)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("feed %s: %w", f.ID, err))
			continue
		}
		s.known[f.Source] = f
	}
	for name := range s.known {
		if !seen[name] {
			s.sched.RemoveSource(name)
			delete(s.known, name)
		}
	}
	return errors.Join(errs...)
}
