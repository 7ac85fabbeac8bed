package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/cases"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/internal/pipeline"
	"socialhub/schemas"
)

// StageName names this stage in metrics and dead letters.
const StageName = "resolve"

// Options configures the stage.
type Options struct {
	Pool    *pgxpool.Pool
	Catalog *catalog.Store
	// Eligibility receives the records of entity type "resident"; without it they go to dlq.
	Eligibility *eligibility.Store
	// Cases receives the records of entity type "application_event" (*cases.Store); without it
	// they go to dlq.
	Cases    CaseEvents
	Outbox   *changes.Outbox
	Kafka    broker.Config
	Topics   event.Topics
	GroupID  string // default "socialhub-resolve"
	Producer interface {
		WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	}
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
	BatchSize int
	BatchWait time.Duration
	// SessionTimeout is the consumer group session timeout (default 10s): how soon another
	// process takes over the partitions of one that died.
	SessionTimeout time.Duration
	// Records says which records of `valid` this stage applies (AllRecords when empty). The hub
	// runs two stages, one per consumer group: CatalogRecords and ResidentRecords, so that the
	// residents' registry never waits on the catalog's entity resolution, which serializes
	// concurrent transactions on its blocking keys (see catalog/resolve.go). A record the other
	// group applies is skipped, and both groups keep their own offsets.
	Records Records
}

// Records selects the records of `valid` a stage applies.
type Records string

// The selections of Options.Records.
const (
	AllRecords      Records = ""
	CatalogRecords  Records = "catalog"   // everything but residents: catalog records and application events
	ResidentRecords Records = "residents" // residents, for the eligibility store
)

// takes reports whether the stage applies records of entity type et. A record whose type is not
// known (its envelope does not decode) belongs to the catalog stage, which dead-letters it.
func (r Records) takes(et string) bool { return r.takesResident(et == schemas.EntityResident) }

func (r Records) takesResident(resident bool) bool {
	switch r {
	case CatalogRecords:
		return !resident
	case ResidentRecords:
		return resident
	}
	return true
}

// CaseEvents applies pulled status events of applications inside the stage's transaction and
// returns their change events (*cases.Store).
type CaseEvents interface {
	ApplyRecords(ctx context.Context, tx pgx.Tx, recs []cases.Record) ([]catalog.Change, error)
}

// Stage is the resolve stage.
type Stage struct {
	opts Options
}

// New returns the stage.
func New(opts Options) *Stage {
	if opts.GroupID == "" {
		opts.GroupID = "socialhub-resolve"
		if opts.Records == ResidentRecords {
			opts.GroupID = "socialhub-resolve-residents"
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = 50 * time.Millisecond
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Stage{opts: opts}
}

// Run takes part in the consumer group until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                s.opts.GroupID,
		Brokers:           s.opts.Kafka.Brokers,
		Dialer:            s.opts.Kafka.Dialer(),
		Topics:            []string{s.opts.Topics.Valid},
		HeartbeatInterval: s.opts.SessionTimeout / 5,
		SessionTimeout:    s.opts.SessionTimeout,
		RebalanceTimeout:  s.opts.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		Timeout:           10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("error joining consumer group %s: %w", s.opts.GroupID, err)
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, kafka.ErrGroupClosed) {
			return nil
		}
		if err != nil {
			s.opts.Logger.Warn("consumer group error, rejoining", "group", s.opts.GroupID, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for _, a := range gen.Assignments[s.opts.Topics.Valid] {
			partition := a.ID
			genID := gen.ID
			gen.Start(func(ctx context.Context) { s.consumePartition(ctx, genID, partition) })
		}
	}
}

// consumePartition applies one partition until the generation ends or another consumer fences it.
func (s *Stage) consumePartition(ctx context.Context, generation int32, partition int) {
	log := s.opts.Logger.With("topic", s.opts.Topics.Valid, "partition", partition, "generation", generation)
	for ctx.Err() == nil {
		err := s.consumeFromStored(ctx, generation, partition)
		if ctx.Err() != nil || errors.Is(err, ErrFenced) {
			if err != nil && ctx.Err() == nil {
				log.Info("partition taken over by another consumer", "error", err)
			}
			return
		}
		log.Warn("resolve failed, retrying from the stored offset", "error", err)
		s.opts.Metrics.Error(metrics.StageResolve)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// decodedBatch is a fetched batch, decoded: what to apply and what to dead-letter, and the offset
// after its last message (the other group's records in between included).
type decodedBatch struct {
	next int64
	recs []pending
	dead []kafka.Message
}

// maxSkippedBatches bounds how many batches' worth of the other group's records one batch may
// span: the offset still moves on through a long run of them, and a batch never waits long.
const maxSkippedBatches = 20

func (s *Stage) consumeFromStored(ctx context.Context, generation int32, partition int) error {
	off, err := loadOffset(ctx, s.opts.Pool, s.opts.GroupID, s.opts.Topics.Valid, partition)
	if err != nil {
		return err
	}
	rc := broker.ReaderConfig(s.opts.Kafka, s.opts.Topics.Valid)
	rc.Partition = partition
	r := kafka.NewReader(rc)
	defer r.Close()
	if err := r.SetOffset(off); err != nil {
		return fmt.Errorf("error seeking to %d: %w", off, err)
	}
	// The next batch is fetched and decoded (CPU) while this one's transaction waits on PostgreSQL.
	batches, stop := pipeline.Prefetch(ctx, func(ctx context.Context) (decodedBatch, error) { return s.fetchAndDecode(ctx, r) })
	defer stop()
	for b := range batches {
		if b.Err != nil {
			return b.Err
		}
		d := b.Value
		if err := s.apply(ctx, generation, partition, off, d.next, d); err != nil {
			return err
		}
		off = d.next
		if s.opts.Metrics != nil {
			s.opts.Metrics.Lag.WithLabelValues(s.lagLabel(), strconv.Itoa(partition)).Set(float64(r.Stats().Lag))
		}
	}
	return nil
}

// fetchAndDecode fetches a batch and decodes it. A batch is BatchSize records the stage applies,
// not BatchSize messages of `valid`: the catalog group's share of a residents' import is a few
// percent, and a transaction per thousand messages would apply a few dozen listings each, every
// one paying a transaction's fixed cost under the catalog's locks. It stops early when the topic
// has nothing more for now (a fetch came back short) or after maxSkippedBatches fetches.
func (s *Stage) fetchAndDecode(ctx context.Context, r *kafka.Reader) (decodedBatch, error) {
	var d decodedBatch
	buf := make([]kafka.Message, 0, s.opts.BatchSize)
	for fetches := 0; fetches < maxSkippedBatches; fetches++ {
		batch, err := pipeline.FetchBatch(ctx, r, buf, s.opts.BatchSize, s.opts.BatchWait)
		if len(batch) == 0 {
			if fetches > 0 {
				return d, nil // what was gathered goes on; the error comes back on the next fetch
			}
			return d, fmt.Errorf("error fetching: %w", err)
		}
		d.next = batch[len(batch)-1].Offset + 1
		recs, dead, err := s.decode(batch)
		if err != nil {
			return d, err
		}
		d.recs, d.dead = append(d.recs, recs...), append(d.dead, dead...)
		if len(d.recs)+len(d.dead) >= s.opts.BatchSize || len(batch) < s.opts.BatchSize {
			break
		}
		// buf is reused: recs and dead letters hold copies of their messages.
	}
	return d, nil
}

// Apply makes a batch durable: catalog rows, eligibility store rows (residents), outbox events and
// the partition offset in one transaction. Records the stores cannot take go to dlq (written
// before the commit, so a crash can repeat a dead letter but never lose a record).
func (s *Stage) Apply(ctx context.Context, generation int32, partition int, prev, next int64, batch []kafka.Message) error {
	recs, dead, err := s.decode(batch)
	if err != nil {
		return err
	}
	return s.apply(ctx, generation, partition, prev, next, decodedBatch{next: next, recs: recs, dead: dead})
}

func (s *Stage) apply(ctx context.Context, generation int32, partition int, prev, next int64, d decodedBatch) error {
	if len(d.dead) > 0 {
		if err := s.opts.Producer.WriteMessages(ctx, d.dead...); err != nil {
			return fmt.Errorf("error writing dead letters: %w", err)
		}
	}
	err := s.applyTx(ctx, generation, partition, prev, next, d.recs, false)
	if err == nil || !isDataError(err) {
		return err
	}
	// Some record in the batch is one the catalog refuses: apply record by record, each under a
	// savepoint, and dead-letter the ones that fail, so the rest go on.
	return s.applyTx(ctx, generation, partition, prev, next, d.recs, true)
}

// pending is a decoded record: resident records (resident set) go to the eligibility store,
// the others to the catalog.
type pending struct {
	rec      catalog.Record
	resident *eligibility.Record
	caseEvt  *cases.Record
	msg      kafka.Message
}

func (s *Stage) decode(batch []kafka.Message) ([]pending, []kafka.Message, error) {
	recs := make([]pending, 0, len(batch))
	var dead []kafka.Message
	// Resident records share one array; it never grows past len(batch), so pointers stay put.
	var residents []eligibility.Record
	var in prometheus.Counter
	if s.opts.Metrics != nil {
		in = s.opts.Metrics.RecordsIn.WithLabelValues(StageName)
	}
	for _, m := range batch {
		takes, known := s.headerTakes(m)
		if known && !takes {
			continue // the other group's record
		}
		var ev event.Event
		if err := event.Unmarshal(m.Value, &ev); err != nil {
			if !known && s.opts.Records == ResidentRecords {
				continue // the catalog stage dead-letters what it cannot tell the type of
			}
			if in != nil {
				in.Inc()
			}
			dl, derr := s.deadLetter(m, nil, err)
			if derr != nil {
				return nil, nil, derr
			}
			dead = append(dead, dl)
			continue
		}
		if !s.opts.Records.takes(ev.EntityType) {
			continue
		}
		if in != nil {
			in.Inc()
		}
		if ev.EntityType == schemas.EntityResident {
			if residents == nil {
				residents = make([]eligibility.Record, 0, len(batch))
			}
			residents = append(residents, eligibility.Record{
				Source: ev.SourceName(), Pseudonym: ev.Subject, Op: ev.Op, ContentHash: ev.ContentHash,
				Facts: ev.Data, SeenAt: ev.Time,
			})
			recs = append(recs, pending{msg: m, resident: &residents[len(residents)-1]})
			continue
		}
		if ev.EntityType == schemas.EntityApplicationEvent {
			recs = append(recs, pending{msg: m, caseEvt: &cases.Record{Source: ev.SourceName(), Data: ev.Data}})
			continue
		}
		recs = append(recs, pending{msg: m, rec: catalog.Record{
			Source: ev.SourceName(), ExternalID: ev.Subject, EntityType: ev.EntityType, Op: ev.Op,
			ContentHash: ev.ContentHash, Doc: ev.Data, SeenAt: ev.Time,
		}})
	}
	return recs, dead, nil
}

// lagLabel names the stage in the lag gauge, where the two groups' partitions would collide, and
// in the batch size histogram.
func (s *Stage) lagLabel() string {
	if s.opts.Records == ResidentRecords {
		return StageName + "-residents"
	}
	return StageName
}

// headerTakes tells from the entity type validate put in the record's headers whether the stage
// applies it; known is false for a record without the header (one written before it existed).
func (s *Stage) headerTakes(m kafka.Message) (takes, known bool) {
	for _, h := range m.Headers {
		if h.Key == event.EntityTypeHeader {
			return s.opts.Records.takesResident(string(h.Value) == schemas.EntityResident), true
		}
	}
	return false, false
}

func (s *Stage) deadLetter(m kafka.Message, ev *event.Event, cause error) (kafka.Message, error) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeRejected).Inc()
	}
	dl, err := pipeline.DeadLetter(StageName, m, ev, []event.Reason{{Field: "(root)", Message: cause.Error()}}, time.Now())
	if err != nil {
		return kafka.Message{}, err
	}
	dl.Topic = s.opts.Topics.DLQ
	return dl, nil
}

// applyTx runs one transaction. With oneByOne set, each record gets its own savepoint and failing
// records are dead-lettered.
func (s *Stage) applyTx(ctx context.Context, generation int32, partition int, prev, next int64, recs []pending, oneByOne bool) error {
	tx, err := s.opts.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("error beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := advanceOffset(ctx, tx, s.opts.GroupID, s.opts.Topics.Valid, partition, generation, prev, next); err != nil {
		return err
	}
	var chs []catalog.Change
	applied, residentsChanged, residentsApplied := 0, 0, 0
	if !oneByOne {
		all := make([]catalog.Record, 0, len(recs))
		var res []eligibility.Record
		var caseEvts []cases.Record
		for _, p := range recs {
			if p.caseEvt != nil {
				caseEvts = append(caseEvts, *p.caseEvt)
				continue
			}
			if p.resident != nil {
				res = append(res, *p.resident)
				continue
			}
			all = append(all, p.rec)
		}
		if chs, err = s.opts.Catalog.Apply(ctx, tx, all); err != nil {
			return fmt.Errorf("error applying batch: %w", err)
		}
		if residentsChanged, err = s.applyResidents(ctx, tx, res); err != nil {
			return fmt.Errorf("error applying batch: %w", err)
		}
		c, err := s.applyCaseEvents(ctx, tx, caseEvts)
		if err != nil {
			return fmt.Errorf("error applying batch: %w", err)
		}
		chs = append(chs, c...)
		applied, residentsApplied = len(all), len(res)
	} else {
		var dead []kafka.Message
		for _, p := range recs {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return fmt.Errorf("error creating savepoint: %w", err)
			}
			var c []catalog.Change
			n := 0
			switch {
			case p.caseEvt != nil:
				c, err = s.applyCaseEvents(ctx, sp, []cases.Record{*p.caseEvt})
			case p.resident != nil:
				n, err = s.applyResidents(ctx, sp, []eligibility.Record{*p.resident})
			default:
				c, err = s.opts.Catalog.Apply(ctx, sp, []catalog.Record{p.rec})
			}
			if err != nil {
				_ = sp.Rollback(ctx)
				if !isDataError(err) {
					return fmt.Errorf("error applying %s: %w", p.key(), err)
				}
				dl, derr := s.deadLetter(p.msg, nil, err)
				if derr != nil {
					return derr
				}
				dead = append(dead, dl)
				continue
			}
			if err := sp.Commit(ctx); err != nil {
				return fmt.Errorf("error releasing savepoint: %w", err)
			}
			chs = append(chs, c...)
			if p.resident != nil {
				residentsChanged += n
				residentsApplied++
			} else {
				applied++
			}
		}
		if len(dead) > 0 {
			if err := s.opts.Producer.WriteMessages(ctx, dead...); err != nil {
				return fmt.Errorf("error writing dead letters: %w", err)
			}
		}
	}
	if err := s.opts.Outbox.Append(ctx, tx, chs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("error committing batch: %w", err)
	}
	if s.opts.Metrics != nil {
		changed := changedRecords(chs)
		s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeApplied).Add(float64(min(changed, applied)))
		s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeUnchanged).Add(float64(max(applied-changed, 0)))
		s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeApplied).Add(float64(min(residentsChanged, residentsApplied)))
		s.opts.Metrics.RecordsOut.WithLabelValues(StageName, metrics.OutcomeUnchanged).Add(float64(max(residentsApplied-residentsChanged, 0)))
		if len(recs) > 0 {
			s.opts.Metrics.BatchRecords.WithLabelValues(s.lagLabel()).Observe(float64(len(recs)))
		}
	}
	return nil
}

// applyResidents writes resident records to the eligibility store inside tx. Residents change no
// catalog entity, so they add nothing to the outbox: eligibility facts are answered by lookups,
// never broadcast.
func (s *Stage) applyResidents(ctx context.Context, tx pgx.Tx, recs []eligibility.Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	if s.opts.Eligibility == nil {
		return 0, fmt.Errorf("%w: %d resident records", ErrNoEligibilityStore, len(recs))
	}
	return s.opts.Eligibility.Apply(ctx, tx, recs)
}

// applyCaseEvents hands status events of applications to the cases store inside tx; their change
// events join the batch's outbox append.
func (s *Stage) applyCaseEvents(ctx context.Context, tx pgx.Tx, recs []cases.Record) ([]catalog.Change, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if s.opts.Cases == nil {
		return nil, fmt.Errorf("%w: %d application events", ErrNoCaseStore, len(recs))
	}
	return s.opts.Cases.ApplyRecords(ctx, tx, recs)
}

// key names a record in errors: source and external id (a pseudonym for residents).
func (p pending) key() string {
	if p.resident != nil {
		return p.resident.Source + "/" + p.resident.Pseudonym
	}
	if p.caseEvt != nil {
		return p.caseEvt.Source + "/" + string(p.msg.Key)
	}
	return p.rec.Source + "/" + p.rec.ExternalID
}

// changedRecords counts source records that changed something: one service change per record.
func changedRecords(chs []catalog.Change) int {
	n := 0
	for _, c := range chs {
		if c.EntityType == "service" {
			n++
		}
	}
	return n
}

// isDataError tells a record the catalog refuses (bad data) from a failure worth retrying.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "22", "23": // data exception, integrity constraint violation
			return true
		}
		return false
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	return errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || errors.Is(err, catalog.ErrInvalidRecord) ||
		errors.Is(err, eligibility.ErrInvalidRecord) || errors.Is(err, ErrNoEligibilityStore) ||
		errors.Is(err, cases.ErrInvalidRecord) || errors.Is(err, ErrNoCaseStore)
}
