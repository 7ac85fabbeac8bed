package validate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	// Tally, when set, receives each batch's outcomes (quality.Store keeps per-source figures).
	Tally Tally
}

// Tally keeps per-source figures of what the stage did. Add gets a batch's outcomes after valid and
// dlq acknowledged them and before the raw position is committed, so a batch is counted at least
// once; a batch read again after a crash comes again, and Add must skip the positions it counted.
type Tally interface {
	Add(ctx context.Context, outcomes []Outcome) error
}

// Outcome is what the stage did with one raw record.
type Outcome struct {
	Topic     string
	Partition int
	Offset    int64
	Source    string // the source's name
	Valid     bool
	// Fields are the fields of the reasons a rejected record carries.
	Fields []string
	// Normalized counts the values normalized in a valid record.
	Normalized Counts
}

// Stage is the validate stage.
type Stage struct {
	opts     Options
	checker  *Checker
	counters *counters // nil without Metrics
}

// counters are the stage's per-record counters, looked up once rather than per record.
type counters struct {
	in, valid, rejected prometheus.Counter
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
	s := &Stage{opts: opts, checker: NewChecker(opts.Validator)}
	if m := opts.Metrics; m != nil {
		s.counters = &counters{
			in:       m.RecordsIn.WithLabelValues(StageName),
			valid:    m.RecordsOut.WithLabelValues(StageName, metrics.OutcomeValid),
			rejected: m.RecordsOut.WithLabelValues(StageName, metrics.OutcomeRejected),
		}
	}
	return s
}

// checked is one batch the stage has checked: the raw records, what to write for each, and the
// outcomes for the tally.
type checked struct {
	batch    []kafka.Message
	out      []kafka.Message
	outcomes []Outcome
}

// Run consumes until ctx ends. Checking a batch (CPU) overlaps with writing the previous one and
// committing its position (round trips to Kafka and PostgreSQL): one goroutine fetches and checks,
// the loop below writes, tallies and commits, strictly in fetch order.
func (s *Stage) Run(ctx context.Context) error {
	rc := broker.ReaderConfig(s.opts.Kafka, s.opts.Topics.Raw)
	rc.GroupID = s.opts.GroupID
	if s.opts.SessionTimeout > 0 {
		// How soon another process takes over the partitions of one that died.
		rc.SessionTimeout, rc.HeartbeatInterval, rc.RebalanceTimeout = s.opts.SessionTimeout, s.opts.SessionTimeout/5, s.opts.SessionTimeout
	}
	r := kafka.NewReader(rc)
	defer r.Close()

	// One batch checked ahead of the one being written (pipeline.Prefetch).
	batches, stop := pipeline.Prefetch(ctx, func(ctx context.Context) (checked, error) { return s.fetchAndCheck(ctx, r) })
	defer stop()
	for c := range batches {
		if c.Err != nil {
			return c.Err
		}
		if err := s.deliver(ctx, r, c.Value); err != nil {
			if ctx.Err() != nil {
				return nil // stopping: whatever was cut short is read again at the next start
			}
			return err
		}
	}
	return nil
}

// fetchAndCheck fetches a batch and checks it.
func (s *Stage) fetchAndCheck(ctx context.Context, r *kafka.Reader) (checked, error) {
	batch, err := pipeline.FetchBatch(ctx, r, make([]kafka.Message, 0, s.opts.BatchSize), s.opts.BatchSize, s.opts.BatchWait)
	if len(batch) == 0 {
		return checked{}, fmt.Errorf("error fetching from %s: %w", s.opts.Topics.Raw, err)
	}
	c := checked{batch: batch, out: make([]kafka.Message, len(batch)), outcomes: make([]Outcome, len(batch))}
	return c, s.processAll(c.batch, c.out, c.outcomes)
}

// deliver makes a checked batch durable downstream, then commits its raw position.
func (s *Stage) deliver(ctx context.Context, r *kafka.Reader, c checked) error {
	if err := s.opts.Producer.WriteMessages(ctx, c.out...); err != nil {
		return fmt.Errorf("error writing validated records: %w", err)
	}
	if s.opts.Tally != nil {
		if err := s.opts.Tally.Add(ctx, c.outcomes); err != nil {
			return fmt.Errorf("error counting validated records: %w", err)
		}
	}
	// Invariant 2: commit the raw position only after valid/dlq acknowledged the results.
	if err := r.CommitMessages(ctx, c.batch...); err != nil {
		return fmt.Errorf("error committing %s position: %w", s.opts.Topics.Raw, err)
	}
	if s.opts.Metrics != nil {
		s.opts.Metrics.Lag.WithLabelValues(StageName, "all").Set(float64(r.Stats().Lag))
	}
	return nil
}

// parallelMin is the batch size below which one goroutine checks it all.
const parallelMin = 64

// processAll checks batch[i] into out[i] and outcomes[i] on every core: the check is CPU-bound
// (decode, normalize, schema, hash) and records are independent; order is kept by index.
func (s *Stage) processAll(batch, out []kafka.Message, outcomes []Outcome) error {
	workers := min(runtime.GOMAXPROCS(0), (len(batch)+parallelMin-1)/parallelMin)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(batch); i += workers {
				o, oc, err := s.process(batch[i])
				if err != nil {
					errs[w] = err
					return
				}
				out[i], outcomes[i] = o, oc
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Process turns one raw record into the record to write: to valid, or to dlq with its reasons.
func (s *Stage) Process(m kafka.Message) (kafka.Message, error) {
	out, _, err := s.process(m)
	return out, err
}

func (s *Stage) process(m kafka.Message) (kafka.Message, Outcome, error) {
	now := s.opts.Now()
	if s.counters != nil {
		s.counters.in.Inc()
	}
	var ev event.Event
	var counts Counts
	reasons := s.check(m, &ev, &counts)
	oc := Outcome{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Source: ev.SourceName()}
	if ev.Source == "" {
		oc.Source, _, _ = strings.Cut(string(m.Key), "/")
	}
	if len(reasons) > 0 {
		oc.Fields = make([]string, len(reasons))
		for i, r := range reasons {
			oc.Fields[i] = r.Field
		}
		if s.counters != nil {
			s.counters.rejected.Inc()
		}
		var evp *event.Event
		if ev.ID != "" {
			evp = &ev
		}
		dl, err := pipeline.DeadLetter(StageName, m, evp, reasons, now)
		if err != nil {
			return kafka.Message{}, oc, fmt.Errorf("error building dead letter: %w", err)
		}
		dl.Topic = s.opts.Topics.DLQ
		return dl, oc, nil
	}
	oc.Valid, oc.Normalized = true, counts
	out := ev
	out.ID = event.NewID()
	out.Type = validType(ev.EntityType, ev.Op)
	out.DataSchema = schemas.SchemaID(ev.EntityType)
	value, err := event.Marshal(&out)
	if err != nil {
		return kafka.Message{}, oc, err
	}
	if s.counters != nil {
		s.counters.valid.Inc()
		counts.Each(func(field string, n int) {
			s.opts.Metrics.NormalizedFields.WithLabelValues(ev.SourceName(), field).Add(float64(n))
		})
	}
	return kafka.Message{Topic: s.opts.Topics.Valid, Key: m.Key, Value: value, Headers: validHeaders(m.Headers, ev.EntityType)}, oc, nil
}

// validHeaders are a valid record's headers: the raw record's, with the entity type repeated in
// event.EntityTypeHeader so that the resolve stages skip each other's records without decoding.
func validHeaders(raw []kafka.Header, entityType string) []kafka.Header {
	out := make([]kafka.Header, 0, len(raw)+1)
	for _, h := range raw {
		if h.Key != event.EntityTypeHeader {
			out = append(out, h)
		}
	}
	return append(out, kafka.Header{Key: event.EntityTypeHeader, Value: []byte(entityType)})
}

// check fills ev with the checked document (see Checker.Check) and returns every reason the record
// cannot go on.
func (s *Stage) check(m kafka.Message, ev *event.Event, counts *Counts) []event.Reason {
	if err := event.Unmarshal(m.Value, ev); err != nil {
		return []event.Reason{{Field: "(envelope)", Message: err.Error()}}
	}
	var reasons []event.Reason
	if ev.Subject == "" {
		reasons = append(reasons, event.Reason{Field: "(envelope).subject", Message: "subject (the record's external id) is required"})
	}
	if !isKey(m.Key, ev.SourceName(), ev.Subject) {
		want := event.Key(ev.SourceName(), ev.Subject)
		reasons = append(reasons, event.Reason{Field: "(envelope).key", Message: "Kafka key " + strconv.Quote(string(m.Key)) + " does not match source/subject " + strconv.Quote(want)})
	}
	switch ev.Op {
	case event.OpDelete:
		return reasons
	case event.OpUpsert:
	default:
		return append(reasons, event.Reason{Field: "(envelope).op", Message: "op must be upsert or delete, got " + strconv.Quote(ev.Op)})
	}
	res := s.checker.Check(ev.EntityType, ev.DataSchema, ev.Data)
	*counts = res.Normalized
	if len(res.Reasons) > 0 || len(reasons) > 0 {
		return append(reasons, res.Reasons...)
	}
	// The hash travels with the record: resolve skips content it already holds.
	ev.Data, ev.ContentHash = res.Data, res.ContentHash
	return nil
}

// isKey reports whether key is event.Key(source, externalID), without building that.
func isKey(key []byte, source, externalID string) bool {
	return len(key) == len(source)+1+len(externalID) && string(key[:len(source)]) == source &&
		key[len(source)] == '/' && string(key[len(source)+1:]) == externalID
}

// validTypes are the event types of valid records, by entity and op, made once.
var validTypes = sync.OnceValue(func() map[[2]string]string {
	types := map[[2]string]string{}
	for _, info := range schemas.Schemas() {
		if info.Entity {
			for _, op := range []string{event.OpUpsert, event.OpDelete} {
				types[[2]string{info.Name, op}] = event.Type(StageName, info.Name, op)
			}
		}
	}
	return types
})

// validType is event.Type(StageName, entity, op).
func validType(entity, op string) string {
	if t, ok := validTypes()[[2]string{entity, op}]; ok {
		return t
	}
	return event.Type(StageName, entity, op)
}
