package validate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/internal/pipeline"
	"socialhub/schemas"
)

// StageName names this stage in metrics, dead letters and event types.
const StageName = "validate"

// Options configures the stage.
type Options struct {
	Kafka     broker.Config
	Topics    event.Topics
	GroupID   string // default "socialhub-validate"
	Validator *schemas.Validator
	Producer  interface {
		WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	}
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
	BatchSize int
	BatchWait time.Duration
	// SessionTimeout is the consumer group session timeout (kafka-go's default when zero).
	SessionTimeout time.Duration
	Now            func() time.Time
}

// Stage is the validate stage.
type Stage struct {
	opts Options
}

// New returns the stage.
func New(opts Options) *Stage {
	if opts.GroupID == "" {
		opts.GroupID = "socialhub-validate"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = 50 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Stage{opts: opts}
}

// Run consumes until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	rc := broker.ReaderConfig(s.opts.Kafka, s.opts.Topics.Raw)
	rc.GroupID = s.opts.GroupID
	if s.opts.SessionTimeout > 0 {
		// How soon another process takes over the partitions of one that died.
		rc.SessionTimeout, rc.HeartbeatInterval, rc.RebalanceTimeout = s.opts.SessionTimeout, s.opts.SessionTimeout/5, s.opts.SessionTimeout
	}
	r := kafka.NewReader(rc)
	defer r.Close()
	var batch []kafka.Message
	out := make([]kafka.Message, 0, s.opts.BatchSize)
	for {
		var err error
		batch, err = pipeline.FetchBatch(ctx, r, batch, s.opts.BatchSize, s.opts.BatchWait)
		if len(batch) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("error fetching from %s: %w", s.opts.Topics.Raw, err)
		}
		out = out[:0]
		for _, m := range batch {
			o, err := s.Process(m)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		if err := s.opts.Producer.WriteMessages(ctx, out...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("error writing validated records: %w", err)
		}
		// Invariant 2: commit the raw position only after valid/dlq acknowledged the results.
		if err := r.CommitMessages(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("error committing %s position: %w", s.opts.Topics.Raw, err)
		}
		if s.opts.Metrics != nil {
			s.opts.Metrics.Lag.WithLabelValues(StageName, "all").Set(float64(r.Stats().Lag))
		}
	}
}

// Process turns one raw record into the record to write: to valid, or to dlq with its reasons.
func (s *Stage) Process(m kafka.Message) (kafka.Message, error) {
	now := s.opts.Now()
	if s.opts.Metrics != nil {
		s.opts.Metrics.RecordsIn.WithLabelValues(StageName).Inc()
	}
	var ev event.Event
	var n normalizer
	reasons := s.check(m, &ev, &n)
	if len(reasons) > 0 {
		if s.opts.Metrics != nil {
			s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeRejected).Inc()
		}
		var evp *event.Event
		if ev.ID != "" {
			evp = &ev
		}
		dl, err := pipeline.DeadLetter(StageName, m, evp, reasons, now)
		if err != nil {
			return kafka.Message{}, fmt.Errorf("error building dead letter: %w", err)
		}
		dl.Topic = s.opts.Topics.DLQ
		return dl, nil
	}
	out := ev
	out.ID = event.NewID()
	out.Type = event.Type(StageName, ev.EntityType, ev.Op)
	out.DataSchema = schemas.SchemaID(ev.EntityType)
	value, err := event.Marshal(&out)
	if err != nil {
		return kafka.Message{}, err
	}
	if s.opts.Metrics != nil {
		s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeValid).Inc()
		for i, c := range n.counts {
			if c > 0 {
				s.opts.Metrics.NormalizedFields.WithLabelValues(ev.SourceName(), fieldLabels[i]).Add(float64(c))
			}
		}
	}
	return kafka.Message{Topic: s.opts.Topics.Valid, Key: m.Key, Value: value, Headers: m.Headers}, nil
}

// check fills ev, normalizing the data of service records (see normalizeService), and returns every
// reason the record cannot go on.
func (s *Stage) check(m kafka.Message, ev *event.Event, n *normalizer) []event.Reason {
	if err := event.Unmarshal(m.Value, ev); err != nil {
		return []event.Reason{{Field: "(envelope)", Message: err.Error()}}
	}
	var reasons []event.Reason
	if ev.Subject == "" {
		reasons = append(reasons, event.Reason{Field: "(envelope).subject", Message: "subject (the record's external id) is required"})
	}
	if want := event.Key(ev.SourceName(), ev.Subject); string(m.Key) != want {
		reasons = append(reasons, event.Reason{Field: "(envelope).key", Message: "Kafka key " + strconv.Quote(string(m.Key)) + " does not match source/subject " + strconv.Quote(want)})
	}
	switch ev.Op {
	case event.OpDelete:
		return reasons
	case event.OpUpsert:
	default:
		return append(reasons, event.Reason{Field: "(envelope).op", Message: "op must be upsert or delete, got " + strconv.Quote(ev.Op)})
	}
	if ev.EntityType == schemas.EntityService {
		// Normalize before the schema check, so the profile judges the values the catalog will hold
		// and the content hash below is the normalized document's: the same input gives the same
		// hash run after run.
		ev.Data = normalizeService(ev.Data, n)
	}
	violations, err := s.opts.Validator.Validate(ev.EntityType, ev.Data)
	if errors.Is(err, schemas.ErrUnknownEntity) {
		return append(reasons, event.Reason{Field: "(envelope).entitytype", Message: "unknown entity type " + strconv.Quote(ev.EntityType)})
	}
	if err != nil {
		return append(reasons, event.Reason{Field: "(root)", Message: err.Error()})
	}
	if len(violations) > 0 || len(n.reasons) > 0 {
		data := n.reasons
		for _, v := range violations {
			data = append(data, event.Reason{Field: v.Field, Message: v.Message})
		}
		reasons = append(reasons, mergeReasons(data)...)
	}
	if len(reasons) > 0 {
		return reasons
	}
	// The hash travels with the record: resolve skips content it already holds.
	h, err := event.ContentHash(ev.Data)
	if err != nil {
		return append(reasons, event.Reason{Field: "(root)", Message: err.Error()})
	}
	ev.ContentHash = h
	return nil
}
