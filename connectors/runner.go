package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/config"
	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/schemas"
)

// Producer writes messages and returns once Kafka acknowledged all of them (kafka-go's Writer with
// RequiredAcks all).
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// RunnerOptions configures a Runner.
type RunnerOptions struct {
	Registry    *Registry
	Checkpoints *Checkpoints
	Producer    Producer
	Topics      event.Topics
	Metrics     *metrics.Metrics
	Logger      *slog.Logger
	Deps        Deps
	// BatchSize is how many records are produced before a checkpoint.
	BatchSize int
	// MaxMessageBytes: a record larger than this is sent to dlq with its reason instead of raw,
	// since the broker would refuse it and block the source forever.
	MaxMessageBytes int
	// Retries is how many times a run failing with ErrBackoffRetry is retried (default 5).
	Retries int
	// Backoff is the first wait before a retry (default 1s); it doubles up to a minute.
	Backoff time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Runner runs sources: reads their records, writes them to the raw topic, checkpoints.
type Runner struct {
	opts RunnerOptions
}

// NewRunner returns a runner.
func NewRunner(opts RunnerOptions) *Runner {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 1 << 20
	}
	if opts.Retries <= 0 {
		opts.Retries = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Runner{opts: opts}
}

// RunResult says what a run did.
type RunResult struct {
	RunID int64
	RunCounts
	Duration time.Duration
}

// Triggers of a run, as stored.
const (
	TriggerSchedule = "schedule"
	TriggerStart    = "start"
	TriggerManual   = "manual"
)

// RunOptions shape one run.
type RunOptions struct {
	// Full ignores the saved position: the source reads everything again (a snapshot source then
	// also re-lists every record). Later stages skip what they already hold.
	Full bool
	// Trigger records why the run happened (TriggerSchedule when empty).
	Trigger string
	// Started, when set, is called with the run's id once it is recorded.
	Started func(runID int64)
}

// retryDelayer is an error that knows how long the server asked to wait (HTTP Retry-After).
type retryDelayer interface{ RetryDelay() time.Duration }

// Run runs a source once, retrying transient failures with exponential back-off (at least what
// the server asked for in Retry-After). Every attempt is a run of its own in connector_runs.
func (r *Runner) Run(ctx context.Context, src config.Source, ro RunOptions) (RunResult, error) {
	backoff := r.opts.Backoff
	var total RunResult
	for attempt := 0; ; attempt++ {
		res, err := r.runOnce(ctx, src, ro)
		total.RunID = res.RunID
		total.Read += res.Read
		total.Emitted += res.Emitted
		total.Rejected += res.Rejected
		total.Deleted += res.Deleted
		total.Duration += res.Duration
		if err == nil || !errors.Is(err, ErrBackoffRetry) || attempt >= r.opts.Retries {
			return total, err
		}
		wait := backoff
		var rd retryDelayer
		if errors.As(err, &rd) && rd.RetryDelay() > wait {
			wait = min(rd.RetryDelay(), time.Hour)
		}
		r.opts.Logger.Warn("source failed, retrying", "source", src.Name, "attempt", attempt+1, "backoff", wait, "error", err)
		r.opts.Metrics.Error(metrics.StageConnector)
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// ErrSourcePanicked wraps a panic inside a source: the run fails, the hub goes on.
var ErrSourcePanicked = errors.New("source panicked")

func (r *Runner) runOnce(ctx context.Context, cfg config.Source, ro RunOptions) (res RunResult, err error) {
	start := r.opts.Now()
	log := r.opts.Logger.With("source", cfg.Name)
	trigger := ro.Trigger
	if trigger == "" {
		trigger = TriggerSchedule
	}
	runID, err := r.opts.Checkpoints.startRun(ctx, cfg.Name, ro.Full, trigger)
	if err != nil {
		return res, err
	}
	res.RunID = runID
	if ro.Started != nil {
		ro.Started(runID)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrSourcePanicked, p)
			log.Error("source panicked", "panic", p, "stack", string(debug.Stack()))
		}
		res.Duration = r.opts.Now().Sub(start)
		result := RunOK
		if err != nil {
			result = RunFailed
		}
		if r.opts.Metrics != nil {
			r.opts.Metrics.ConnectorRuns.WithLabelValues(cfg.Name, result).Inc()
		}
		// A run cut short by shutdown still records how far it got, on a fresh context.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if ferr := r.opts.Checkpoints.finishRun(fctx, runID, res.RunCounts, err); ferr != nil && err == nil {
			err = ferr
		}
	}()

	src, err := r.opts.Registry.New(cfg, r.opts.Deps)
	if err != nil {
		return res, err
	}
	var pos Position
	if !ro.Full {
		if pos, err = r.opts.Checkpoints.Load(ctx, cfg.Name); err != nil {
			return res, err
		}
	}
	if err := src.Open(ctx, pos); err != nil {
		return res, fmt.Errorf("error opening source %s: %w", cfg.Name, err)
	}
	defer func() {
		if cerr := src.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = fmt.Errorf("error closing source %s: %w", cfg.Name, cerr)
		}
	}()
	snapshot := ""
	if sn, ok := src.(Snapshotter); ok {
		snapshot = sn.SnapshotID()
	}

	env := r.envelopes(cfg.Name)
	batch := make([]kafka.Message, 0, r.opts.BatchSize)
	var keys, types []string
	var last Position
	var pending RunCounts // counts of the batch not yet durable
	lastLog := start
	// The Kafka write of a batch overlaps with reading the next one; acknowledging the source and
	// the checkpoint stay on this goroutine, in batch order, once the write returned. One write at a
	// time keeps Kafka's order of a key's records.
	var inflight *inflightBatch
	defer func() {
		if inflight != nil {
			<-inflight.done // never leave a write running behind a run that ended
		}
	}()
	finish := func() error {
		if inflight == nil {
			return nil
		}
		b := inflight
		werr := <-b.done
		inflight = nil
		if werr != nil {
			return fmt.Errorf("error writing %d records of %s to Kafka: %w", len(b.msgs), cfg.Name, werr)
		}
		// Invariant 1: the checkpoint moves only after Kafka acknowledged every record before it.
		if err := src.Ack(ctx, b.last); err != nil {
			return fmt.Errorf("error acknowledging source %s: %w", cfg.Name, err)
		}
		counts := res.RunCounts
		counts.Read += b.pending.Read
		counts.Emitted += b.pending.Emitted
		counts.Rejected += b.pending.Rejected
		err := r.opts.Checkpoints.commitBatch(ctx, batchCommit{
			source: cfg.Name, runID: runID, pos: b.last, produced: int64(len(b.msgs)), counts: counts,
			snapshot: snapshot, keys: b.keys, types: b.types,
		})
		if err != nil {
			return err
		}
		if r.opts.Metrics != nil {
			r.opts.Metrics.RecordsOut.WithLabelValues("connector", metrics.OutcomeProduced).Add(float64(b.pending.Emitted))
			r.opts.Metrics.RecordsOut.WithLabelValues("connector", metrics.OutcomeRejected).Add(float64(b.pending.Rejected))
		}
		res.RunCounts = counts
		if now := r.opts.Now(); now.Sub(lastLog) > 5*time.Second {
			log.Info("source progress", "read", res.Read, "rate_per_s", int(float64(res.Read)/now.Sub(start).Seconds()))
			lastLog = now
		}
		return nil
	}
	flush := func() error {
		if len(batch) == 0 {
			return finish()
		}
		if err := finish(); err != nil {
			return err
		}
		b := &inflightBatch{msgs: batch, last: last, pending: pending, keys: keys, types: types, done: make(chan error, 1)}
		go func() { b.done <- r.opts.Producer.WriteMessages(ctx, b.msgs...) }()
		inflight = b
		batch, keys, types = make([]kafka.Message, 0, r.opts.BatchSize), nil, nil
		pending = RunCounts{}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rec, err := src.Read(ctx)
		if errors.Is(err, ErrEndOfInput) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return res, ferr
			}
			if ferr := finish(); ferr != nil {
				return res, ferr
			}
			return res, fmt.Errorf("error reading source %s: %w", cfg.Name, err)
		}
		msg, rejected, err := env.message(rec)
		if err != nil {
			return res, err
		}
		pending.Read++
		if rejected {
			pending.Rejected++
		} else {
			pending.Emitted++
		}
		if snapshot != "" && !rejected && rec.ExternalID != "" {
			// A snapshot lists the records it delivered. A rejected one is not among them (its id may
			// be made up, as when a national id fails its checksum), so an earlier good version of it
			// is deleted: the source no longer lists a valid record under that id, and dlq says why.
			keys, types = append(keys, rec.ExternalID), append(types, rec.EntityType)
		}
		batch = append(batch, msg)
		last = rec.Position
		if len(batch) >= r.opts.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := finish(); err != nil {
		return res, err
	}
	if snapshot != "" {
		empty, err := r.opts.Checkpoints.emptySnapshot(ctx, cfg.Name, snapshot)
		if err != nil {
			return res, err
		}
		if empty {
			// An empty list is far more often a broken export than a city without services:
			// it deletes nothing, and says so.
			log.Warn("the source's list is empty; nothing is deleted (check the source, then run it with --full)")
		} else if err := r.deleteGone(ctx, cfg.Name, snapshot, runID, &res); err != nil {
			return res, err
		}
	}
	log.Info("source run finished", "read", res.Read, "emitted", res.Emitted, "rejected", res.Rejected,
		"deleted", res.Deleted, "duration", r.opts.Now().Sub(start).Round(time.Millisecond))
	return res, nil
}

// inflightBatch is a batch whose Kafka write is under way: what to acknowledge and checkpoint once
// it returns.
type inflightBatch struct {
	msgs        []kafka.Message
	last        Position
	pending     RunCounts
	keys, types []string
	done        chan error
}

// deleteGone runs once a snapshot completed: every record an earlier snapshot listed and this one
// does not becomes a delete on raw. Keys are forgotten only after Kafka acknowledged the deletes,
// so a crash in between re-sends them (deletes are idempotent downstream), never loses them.
func (r *Runner) deleteGone(ctx context.Context, source, snapshot string, runID int64, res *RunResult) error {
	env := r.envelopes(source)
	for {
		ids, types, err := r.opts.Checkpoints.staleKeys(ctx, source, snapshot, r.opts.BatchSize)
		if err != nil || len(ids) == 0 {
			return err
		}
		msgs := make([]kafka.Message, len(ids))
		for i := range ids {
			if msgs[i], _, err = env.message(Record{ExternalID: ids[i], EntityType: types[i], Op: event.OpDelete}); err != nil {
				return err
			}
		}
		if err := r.opts.Producer.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("error writing %d deletes of %s to Kafka: %w", len(msgs), source, err)
		}
		counts := res.RunCounts
		counts.Deleted += int64(len(ids))
		counts.Emitted += int64(len(ids))
		if err := r.opts.Checkpoints.forgetKeys(ctx, source, ids, runID, counts); err != nil {
			return err
		}
		res.RunCounts = counts
		if r.opts.Metrics != nil {
			r.opts.Metrics.RecordsOut.WithLabelValues("connector", metrics.OutcomeProduced).Add(float64(len(ids)))
		}
	}
}

// contentTypeHeaders are the headers of every message; shared, as nothing writes to them.
var contentTypeHeaders = []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}}

// envelopes builds the messages of one source. What every record of a kind shares (source URI,
// type, schema id) is spelled once, so a record costs only its own bytes.
type envelopes struct {
	r      *Runner
	source string
	uri    string
	kinds  map[kindOp]kindNames
}

type kindOp struct{ entity, op string }

type kindNames struct{ typ, schema string }

func (r *Runner) envelopes(source string) *envelopes {
	return &envelopes{r: r, source: source, uri: event.SourceURI(source), kinds: map[kindOp]kindNames{}}
}

// message wraps a record in its envelope for the raw topic. A record the source rejected, or one
// too large for the broker, goes to dlq instead with its reasons, so it neither blocks the source
// nor vanishes.
func (e *envelopes) message(rec Record) (kafka.Message, bool, error) {
	r := e.r
	op := rec.Op
	if op == "" {
		op = event.OpUpsert
	}
	k := kindOp{rec.EntityType, op}
	names, ok := e.kinds[k]
	if !ok {
		names = kindNames{typ: event.Type("raw", rec.EntityType, op), schema: schemas.SchemaID(rec.EntityType)}
		e.kinds[k] = names
	}
	ev := &event.Event{
		ID:         event.NewID(),
		Source:     e.uri,
		Type:       names.typ,
		Subject:    rec.ExternalID,
		Time:       r.opts.Now().UTC(),
		DataSchema: names.schema,
		EntityType: rec.EntityType,
		Op:         op,
		Data:       rec.Data,
	}
	if len(rec.Data) > 0 {
		ev.ContentHash = rec.ContentHash
		if ev.ContentHash == "" {
			// A record whose data is not JSON still goes on: validate dead-letters it with the reason.
			ev.ContentHash, _ = event.ContentHash(rec.Data)
		}
	}
	key := make([]byte, 0, len(e.source)+1+len(rec.ExternalID))
	key = append(append(append(key, e.source...), '/'), rec.ExternalID...) // event.Key
	if len(rec.Reasons) > 0 {
		if len(rec.Data) > 0 && !json.Valid(rec.Data) {
			ev.Data, ev.ContentHash = nil, ""
		}
		return r.deadLetter(e.source, rec, ev, string(key), contentTypeHeaders, rec.Reasons)
	}
	value, err := event.Marshal(ev)
	if err != nil {
		return kafka.Message{}, false, err
	}
	// Leave room for the key, headers and batch framing.
	if len(value)+len(key)+512 <= r.opts.MaxMessageBytes {
		return kafka.Message{Topic: r.opts.Topics.Raw, Key: key, Value: value, Headers: contentTypeHeaders}, false, nil
	}
	reason := event.Reason{Field: "(root)", Message: fmt.Sprintf("record is %d bytes, over the broker's limit of %d", len(value), r.opts.MaxMessageBytes)}
	ev.Data, ev.ContentHash = nil, "" // the envelope without its data says which record it was
	return r.deadLetter(e.source, rec, ev, string(key), contentTypeHeaders, []event.Reason{reason})
}

func (r *Runner) deadLetter(source string, rec Record, ev *event.Event, key string, headers []kafka.Header, reasons []event.Reason) (kafka.Message, bool, error) {
	dl := event.DeadLetter{Stage: "connector", Reasons: reasons, Topic: r.opts.Topics.Raw, Key: key}
	orig, err := event.Marshal(ev)
	if err != nil {
		return kafka.Message{}, false, err
	}
	dl.Original = orig
	data, err := jsonMarshal(dl)
	if err != nil {
		return kafka.Message{}, false, err
	}
	dev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(source), Type: event.DeadLetterType("connector"),
		Subject: rec.ExternalID, Time: ev.Time, EntityType: rec.EntityType, Op: ev.Op, Data: data,
	}
	value, err := event.Marshal(dev)
	if err != nil {
		return kafka.Message{}, false, err
	}
	return kafka.Message{Topic: r.opts.Topics.DLQ, Key: []byte(key), Value: value, Headers: headers}, true, nil
}
