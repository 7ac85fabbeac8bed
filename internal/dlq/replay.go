package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/event"
	"socialhub/internal/schedule"
)

// StageConnector is the stage of records a connector itself rejected (connectors.Runner).
const StageConnector = "connector"

// ReplayerOptions configures a Replayer.
type ReplayerOptions struct {
	Store    *Store
	Producer interface {
		WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	}
	Topics event.Topics
	// Rerun starts a full re-run of a source with its current config (the hub passes its
	// scheduler's RunNow(name, true)). It returns once the run started; an error wrapping
	// schedule.ErrUnknownSource means the source cannot be re-run (a pushed source), one wrapping
	// schedule.ErrAlreadyRunning that it runs now. Without it, sources are never re-run.
	Rerun  func(source string) error
	Logger *slog.Logger
	// BatchSize is how many originals go to raw per write (default 500).
	BatchSize int
	Now       func() time.Time
}

// Replayer sends dead letters through the pipeline again.
type Replayer struct {
	opts ReplayerOptions
}

// NewReplayer returns a replayer.
func NewReplayer(opts ReplayerOptions) *Replayer {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Replayer{opts: opts}
}

// Selection picks what to replay: the dead letters with the given ids, or every open dead letter
// of a source. Exactly one is set.
type Selection struct {
	IDs    []string `json:"ids,omitempty"`
	Source string   `json:"source,omitempty"`
}

// Republished is a dead letter whose original went back to raw as EventID.
type Republished struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
}

// Rerun is a source read again in full, and how many of its dead letters that covers.
type Rerun struct {
	Source      string `json:"source"`
	DeadLetters int    `json:"dead_letters"`
}

// Skipped is a selected dead letter that was not replayed, and why.
type Skipped struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Result says what Replay did.
type Result struct {
	// Replayed counts the dead letters now marked replayed.
	Replayed    int           `json:"replayed"`
	Republished []Republished `json:"republished"`
	Reruns      []Rerun       `json:"reruns"`
	Skipped     []Skipped     `json:"skipped"`
}

// NotFoundError lists selected ids the index does not hold; it wraps ErrNotFound.
type NotFoundError struct{ IDs []string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%v: %s", ErrNotFound, strings.Join(e.IDs, ", "))
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// Replay re-runs the selected dead letters through the current config and schemas.
//
// A record validate or resolve rejected goes back to raw as it was read — same key and data, a new
// event id, the time now — so validate judges it with the current schemas and normalizers. A
// record the connector rejected can only be fixed in the source's config or data, so its source
// is re-run in full. A whole source (Selection.Source) is re-run in full as well when it can be:
// that applies a fixed column mapping as much as fixed schemas, while its originals would carry
// the old mapping's mistakes again; a source that cannot be re-run (pushed records) has its
// originals sent back instead.
//
// Every replayed dead letter is marked replayed. A fixed record lands in the catalog once (the
// catalog skips content it holds); one that fails again comes back on dlq with its new reasons,
// linked to this one (Entry.RetriedAs, Entry.RetryOf).
func (r *Replayer) Replay(ctx context.Context, sel Selection) (Result, error) {
	res := Result{Republished: []Republished{}, Reruns: []Rerun{}, Skipped: []Skipped{}}
	if (len(sel.IDs) == 0) == (sel.Source == "") {
		return res, fmt.Errorf("%w: give either ids or a source", ErrInvalidSelection)
	}
	if sel.Source != "" {
		return res, r.replaySource(ctx, sel.Source, &res)
	}
	return res, r.replayIDs(ctx, sel.IDs, &res)
}

func (r *Replayer) replaySource(ctx context.Context, source string, res *Result) error {
	if r.opts.Rerun != nil {
		at := r.now()
		// Marked before the run starts, so every record the run reads is later than the mark: the
		// sweep and the links compare against it.
		marked, err := r.opts.Store.markRerun(ctx, nil, source, at)
		if err != nil || len(marked) == 0 {
			return err
		}
		err = r.opts.Rerun(source)
		if err == nil {
			res.Replayed += len(marked)
			res.Reruns = append(res.Reruns, Rerun{Source: source, DeadLetters: len(marked)})
			return nil
		}
		if uerr := r.opts.Store.unmarkRerun(context.WithoutCancel(ctx), marked, at); uerr != nil {
			return errors.Join(err, uerr)
		}
		if !errors.Is(err, schedule.ErrUnknownSource) {
			return r.rerunError(source, err)
		}
	}
	var after int64
	for {
		page, err := r.opts.Store.replayable(ctx, nil, source, after, r.opts.BatchSize)
		if err != nil || len(page) == 0 {
			return err
		}
		after = page[len(page)-1].seq
		var todo []Entry
		for _, e := range page {
			if e.Stage == StageConnector {
				res.Skipped = append(res.Skipped, Skipped{e.ID, "the connector rejected it and source " + source + " cannot be re-run here: fix the source's data and send it again"})
				continue
			}
			todo = append(todo, e)
		}
		if err := r.republish(ctx, todo, res); err != nil {
			return err
		}
	}
}

func (r *Replayer) replayIDs(ctx context.Context, ids []string, res *Result) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	entries, err := r.opts.Store.replayable(ctx, ids, "", 0, 0)
	if err != nil {
		return err
	}
	found := make(map[string]bool, len(entries))
	for _, e := range entries {
		found[e.ID] = true
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return &NotFoundError{IDs: missing}
	}
	var todo []Entry
	bySource := map[string][]string{}
	var sources []string
	for _, e := range entries {
		switch {
		case e.Status == StatusReplayed:
			res.Skipped = append(res.Skipped, Skipped{e.ID, "already replayed; replay the dead letter its replay produced, if any"})
		case e.Status == StatusResolved:
			res.Skipped = append(res.Skipped, Skipped{e.ID, "resolved: a later version of the record is in the catalog"})
		case e.Stage == StageConnector:
			if _, ok := bySource[e.Source]; !ok {
				sources = append(sources, e.Source)
			}
			bySource[e.Source] = append(bySource[e.Source], e.ID)
		default:
			todo = append(todo, e)
		}
	}
	// Re-runs first: a source that is busy fails the request before anything was sent.
	for _, src := range sources {
		if err := r.rerunIDs(ctx, src, bySource[src], res); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(todo, r.opts.BatchSize) {
		if err := r.republish(ctx, chunk, res); err != nil {
			return err
		}
	}
	return nil
}

func (r *Replayer) rerunIDs(ctx context.Context, source string, ids []string, res *Result) error {
	skip := func(why string) {
		for _, id := range ids {
			res.Skipped = append(res.Skipped, Skipped{id, why})
		}
	}
	if r.opts.Rerun == nil {
		skip("the connector rejected it: fix the source's config or data, then re-run source " + source)
		return nil
	}
	at := r.now()
	marked, err := r.opts.Store.markRerun(ctx, ids, source, at)
	if err != nil || len(marked) == 0 {
		return err
	}
	err = r.opts.Rerun(source)
	if err == nil {
		res.Replayed += len(marked)
		res.Reruns = append(res.Reruns, Rerun{Source: source, DeadLetters: len(marked)})
		return nil
	}
	if uerr := r.opts.Store.unmarkRerun(context.WithoutCancel(ctx), marked, at); uerr != nil {
		return errors.Join(err, uerr)
	}
	if errors.Is(err, schedule.ErrUnknownSource) {
		skip("the connector rejected it and source " + source + " cannot be re-run here: " + err.Error())
		return nil
	}
	return r.rerunError(source, err)
}

func (r *Replayer) rerunError(source string, err error) error {
	if errors.Is(err, schedule.ErrAlreadyRunning) {
		return fmt.Errorf("%w: %s (replay once the run finished)", ErrSourceBusy, source)
	}
	return fmt.Errorf("error re-running source %s: %w", source, err)
}

// republish sends the originals of es back to raw, then marks them replayed. A crash in between
// sends them again on the next replay: harmless, since the catalog skips content it holds.
func (r *Replayer) republish(ctx context.Context, es []Entry, res *Result) error {
	if len(es) == 0 {
		return nil
	}
	now := r.now()
	msgs := make([]kafka.Message, 0, len(es))
	ids := make([]string, 0, len(es))
	evIDs := make([]string, 0, len(es))
	for _, e := range es {
		m, evID, why := r.rawMessage(e, now)
		if why != "" {
			res.Skipped = append(res.Skipped, Skipped{e.ID, why})
			continue
		}
		msgs, ids, evIDs = append(msgs, m), append(ids, e.ID), append(evIDs, evID)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := r.opts.Producer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("error writing %d replayed records to %s: %w", len(msgs), r.opts.Topics.Raw, err)
	}
	// Marked only once Kafka acknowledged the records, so "replayed" never names a lost record.
	if err := r.opts.Store.markRepublished(context.WithoutCancel(ctx), ids, evIDs, now); err != nil {
		return err
	}
	for i := range ids {
		res.Republished = append(res.Republished, Republished{ID: ids[i], EventID: evIDs[i]})
	}
	res.Replayed += len(ids)
	return nil
}

// rawMessage rebuilds the raw record of a dead letter: same key, source, subject, entity type, op
// and data; a new id, the time now, the raw type. It returns why not when it cannot.
func (r *Replayer) rawMessage(e Entry, now time.Time) (kafka.Message, string, string) {
	if !e.originalJSON {
		return kafka.Message{}, "", "the original record was not JSON, so it cannot be sent again: fix it at the source"
	}
	var ev event.Event
	if err := event.Unmarshal(e.original, &ev); err != nil {
		return kafka.Message{}, "", "the original record is not a readable event (" + err.Error() + "): fix it at the source"
	}
	ev.ID = event.NewID()
	ev.Time = now
	ev.Type = event.Type("raw", ev.EntityType, ev.Op)
	ev.ContentHash = ""
	if len(ev.Data) > 0 {
		if h, err := event.ContentHash(ev.Data); err == nil {
			ev.ContentHash = h
		}
	}
	value, err := event.Marshal(&ev)
	if err != nil {
		return kafka.Message{}, "", "the original record cannot be encoded again: " + err.Error()
	}
	return kafka.Message{
		Topic: r.opts.Topics.Raw, Key: []byte(e.Key), Value: value,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}},
	}, ev.ID, ""
}

// now is the replay's time, at the microsecond PostgreSQL keeps, so that the replayed record's
// time and the stored replayed_at compare equal.
func (r *Replayer) now() time.Time { return r.opts.Now().UTC().Truncate(time.Microsecond) }
