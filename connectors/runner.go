package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	Records  int64
	Rejected int64
	Duration time.Duration
}

// Run runs a source once, retrying transient failures with exponential back-off.
func (r *Runner) Run(ctx context.Context, src config.Source) (RunResult, error) {
	backoff := time.Second
	var total RunResult
	for attempt := 0; ; attempt++ {
		res, err := r.runOnce(ctx, src)
		total.Records += res.Records
		total.Rejected += res.Rejected
		total.Duration += res.Duration
		if err == nil || !errors.Is(err, ErrBackoffRetry) || attempt >= r.opts.Retries {
			return total, err
		}
		r.opts.Logger.Warn("source failed, retrying", "source", src.Name, "attempt", attempt+1, "backoff", backoff, "error", err)
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

func (r *Runner) runOnce(ctx context.Context, cfg config.Source) (res RunResult, err error) {
	start := r.opts.Now()
	log := r.opts.Logger.With("source", cfg.Name)
	runID, err := r.opts.Checkpoints.startRun(ctx, cfg.Name)
	if err != nil {
		return res, err
	}
	defer func() {
		res.Duration = r.opts.Now().Sub(start)
		result := "ok"
		if err != nil {
			result = "failed"
		}
		if r.opts.Metrics != nil {
			r.opts.Metrics.ConnectorRuns.WithLabelValues(cfg.Name, result).Inc()
		}
		// A run cut short by shutdown still records how far it got, on a fresh context.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if ferr := r.opts.Checkpoints.finishRun(fctx, runID, res.Records, err); ferr != nil && err == nil {
			err = ferr
		}
	}()

	src, err := r.opts.Registry.New(cfg, r.opts.Deps)
	if err != nil {
		return res, err
	}
	pos, err := r.opts.Checkpoints.Load(ctx, cfg.Name)
	if err != nil {
		return res, err
	}
	if err := src.Open(ctx, pos); err != nil {
		return res, fmt.Errorf("error opening source %s: %w", cfg.Name, err)
	}
	defer func() {
		if cerr := src.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = fmt.Errorf("error closing source %s: %w", cfg.Name, cerr)
		}
	}()

	batch := make([]kafka.Message, 0, r.opts.BatchSize)
	var last Position
	lastLog := start
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.opts.Producer.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("error writing %d records of %s to Kafka: %w", len(batch), cfg.Name, err)
		}
		// Invariant 1: the checkpoint moves only after Kafka acknowledged every record before it.
		if err := src.Ack(ctx, last); err != nil {
			return fmt.Errorf("error acknowledging source %s: %w", cfg.Name, err)
		}
		if err := r.opts.Checkpoints.Save(ctx, cfg.Name, last, int64(len(batch))); err != nil {
			return err
		}
		if r.opts.Metrics != nil {
			r.opts.Metrics.RecordsOut.WithLabelValues("connector", metrics.OutcomeProduced).Add(float64(len(batch)))
		}
		res.Records += int64(len(batch))
		batch = batch[:0]
		if now := r.opts.Now(); now.Sub(lastLog) > 5*time.Second {
			log.Info("source progress", "records", res.Records, "rate_per_s", int(float64(res.Records)/now.Sub(start).Seconds()))
			lastLog = now
		}
		return nil
	}
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, ErrEndOfInput) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return res, ferr
			}
			return res, fmt.Errorf("error reading source %s: %w", cfg.Name, err)
		}
		msg, rejected, err := r.message(cfg.Name, rec)
		if err != nil {
			return res, err
		}
		if rejected {
			res.Rejected++
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
	log.Info("source run finished", "records", res.Records, "rejected", res.Rejected, "duration", r.opts.Now().Sub(start).Round(time.Millisecond))
	return res, nil
}

// message wraps a record in its envelope for the raw topic. A record too large for the broker goes
// to dlq instead, with the reason, so it neither blocks the source nor vanishes.
func (r *Runner) message(source string, rec Record) (kafka.Message, bool, error) {
	op := rec.Op
	if op == "" {
		op = event.OpUpsert
	}
	ev := &event.Event{
		ID:         event.NewID(),
		Source:     event.SourceURI(source),
		Type:       event.Type("raw", rec.EntityType, op),
		Subject:    rec.ExternalID,
		Time:       r.opts.Now().UTC(),
		DataSchema: schemas.SchemaID(rec.EntityType),
		EntityType: rec.EntityType,
		Op:         op,
		Data:       rec.Data,
	}
	if len(rec.Data) > 0 {
		h, err := event.ContentHash(rec.Data)
		if err == nil {
			ev.ContentHash = h
		}
		// A record whose data is not JSON still goes on: validate dead-letters it with the reason.
	}
	key := event.Key(source, rec.ExternalID)
	value, err := event.Marshal(ev)
	if err != nil {
		return kafka.Message{}, false, err
	}
	headers := []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}}
	// Leave room for the key, headers and batch framing.
	if len(value)+len(key)+512 <= r.opts.MaxMessageBytes {
		return kafka.Message{Topic: r.opts.Topics.Raw, Key: []byte(key), Value: value, Headers: headers}, false, nil
	}
	dl := event.DeadLetter{
		Stage:   "connector",
		Reasons: []event.Reason{{Field: "(root)", Message: fmt.Sprintf("record is %d bytes, over the broker's limit of %d", len(value), r.opts.MaxMessageBytes)}},
		Topic:   r.opts.Topics.Raw,
		Key:     key,
	}
	ev.Data = nil
	ev.ContentHash = ""
	head, _ := event.Marshal(ev)
	dl.Original = head // the envelope without its data, to say which record it was
	data, err := jsonMarshal(dl)
	if err != nil {
		return kafka.Message{}, false, err
	}
	dev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(source), Type: event.DeadLetterType("connector"),
		Subject: rec.ExternalID, Time: r.opts.Now().UTC(), EntityType: rec.EntityType, Op: op, Data: data,
	}
	dvalue, err := event.Marshal(dev)
	if err != nil {
		return kafka.Message{}, false, err
	}
	if r.opts.Metrics != nil {
		r.opts.Metrics.RecordsOut.WithLabelValues("connector", metrics.OutcomeRejected).Inc()
	}
	return kafka.Message{Topic: r.opts.Topics.DLQ, Key: []byte(key), Value: dvalue, Headers: headers}, true, nil
}
