package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/internal/pipeline"
)

// Landed tells when the current content of source records reached the catalog (catalog.Store).
type Landed interface {
	SeenAt(ctx context.Context, keys []catalog.SourceKey) (map[catalog.SourceKey]time.Time, error)
}

// IndexerOptions configures an Indexer.
type IndexerOptions struct {
	Store *Store
	// Catalog, when set, lets the indexer mark dead letters resolved once a later version of
	// their record landed.
	Catalog Landed
	Kafka   broker.Config
	Topics  event.Topics
	GroupID string // default "socialhub-dlq"
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// BatchSize and BatchWait shape the batches taken from dlq (default 500, 50ms).
	BatchSize int
	BatchWait time.Duration
	// SweepInterval is how often dead letters are checked against the catalog (default 5s).
	SweepInterval time.Duration
	Now           func() time.Time
}

// Indexer consumes the dlq topic into the index, and marks dead letters resolved.
type Indexer struct {
	opts IndexerOptions

	mu      sync.Mutex
	gaugeOf map[string]bool // sources the gauge was set for, so a source that reached 0 shows 0
}

// NewIndexer returns an indexer.
func NewIndexer(opts IndexerOptions) *Indexer {
	if opts.GroupID == "" {
		opts.GroupID = "socialhub-dlq"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = 50 * time.Millisecond
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Indexer{opts: opts, gaugeOf: map[string]bool{}}
}

// Run consumes until ctx ends; alongside, every SweepInterval, it marks resolved the dead letters
// whose record landed since.
func (x *Indexer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if x.opts.Catalog != nil {
		wg.Go(func() {
			t := time.NewTicker(x.opts.SweepInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if _, err := x.Sweep(ctx); err != nil && ctx.Err() == nil {
					// A failed sweep is retried at the next tick; indexing goes on meanwhile.
					x.opts.Logger.Warn("dead-letter sweep failed", "error", err)
					x.opts.Metrics.Error(metrics.StageDLQ)
				}
			}
		})
	}
	err := x.consume(ctx)
	cancel()
	wg.Wait()
	return err
}

func (x *Indexer) consume(ctx context.Context) error {
	rc := broker.ReaderConfig(x.opts.Kafka, x.opts.Topics.DLQ)
	rc.GroupID = x.opts.GroupID
	r := kafka.NewReader(rc)
	defer r.Close()
	var batch []kafka.Message
	entries := make([]Entry, 0, x.opts.BatchSize)
	for {
		var err error
		batch, err = pipeline.FetchBatch(ctx, r, batch, x.opts.BatchSize, x.opts.BatchWait)
		if len(batch) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("error fetching from %s: %w", x.opts.Topics.DLQ, err)
		}
		entries = entries[:0]
		for _, m := range batch {
			entries = append(entries, EntryOf(m))
		}
		if _, err := x.opts.Store.Insert(ctx, entries); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// Invariant 2: the dlq position moves only after the batch is durable in the index.
		if err := r.CommitMessages(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("error committing %s position: %w", x.opts.Topics.DLQ, err)
		}
		if x.opts.Metrics != nil {
			x.opts.Metrics.Lag.WithLabelValues("dlq", "all").Set(float64(r.Stats().Lag))
			if err := x.refreshGauge(ctx); err != nil && ctx.Err() == nil {
				x.opts.Logger.Warn("error refreshing the open dead-letter gauge", "error", err)
			}
		}
	}
}

// sweepPage is how many dead letters a sweep checks against the catalog per query.
const sweepPage = 1000

// Sweep marks resolved every dead letter whose record has a later version in the catalog: for an
// open one, content that arrived after the rejected record; for a replayed one, content that
// arrived with or after the replay. It returns how many it marked.
func (x *Indexer) Sweep(ctx context.Context) (int, error) {
	if x.opts.Catalog == nil {
		return 0, nil
	}
	marked := 0
	var after int64
	for {
		page, err := x.opts.Store.unresolvedAfter(ctx, after, sweepPage)
		if err != nil || len(page) == 0 {
			if err == nil && x.opts.Metrics != nil && marked > 0 {
				err = x.refreshGauge(ctx)
			}
			return marked, err
		}
		after = page[len(page)-1].seq
		keys := make([]catalog.SourceKey, 0, len(page))
		for _, u := range page {
			keys = append(keys, catalog.SourceKey{Source: u.source, ExternalID: u.subject})
		}
		seen, err := x.opts.Catalog.SeenAt(ctx, keys)
		if err != nil {
			return marked, err
		}
		var ids []string
		for _, u := range page {
			at, ok := seen[catalog.SourceKey{Source: u.source, ExternalID: u.subject}]
			if !ok {
				continue
			}
			// A replay's record carries the replay's time exactly, so it counts; an open dead
			// letter needs strictly newer content than the record it rejected.
			if at.After(u.since) || (u.inclusive && at.Equal(u.since)) {
				ids = append(ids, u.id)
			}
		}
		if len(ids) > 0 {
			if err := x.opts.Store.markResolved(ctx, ids, x.opts.Now().UTC()); err != nil {
				return marked, err
			}
			marked += len(ids)
		}
	}
}

// refreshGauge sets socialhub_dlq_open for every source, 0 for sources that had some before.
func (x *Indexer) refreshGauge(ctx context.Context) error {
	if x.opts.Metrics == nil {
		return nil
	}
	counts, err := x.opts.Store.openBySource(ctx)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for src := range x.gaugeOf {
		if _, ok := counts[src]; !ok {
			x.opts.Metrics.DLQOpen.WithLabelValues(src).Set(0)
		}
	}
	for src, n := range counts {
		x.opts.Metrics.DLQOpen.WithLabelValues(src).Set(float64(n))
		x.gaugeOf[src] = true
	}
	return nil
}

// EntryOf turns a message of the dlq topic into an index entry. A message that is not a readable
// dead letter is indexed all the same, under an id made of its position, with the reason and its
// bytes: nothing on dlq goes unseen.
func EntryOf(m kafka.Message) Entry {
	e := Entry{
		Key: strings.ToValidUTF8(string(m.Key), "\uFFFD"), Time: m.Time.UTC(),
		DLQTopic: m.Topic, DLQPartition: m.Partition, DLQOffset: m.Offset,
	}
	// Until the envelope says otherwise, the key names the record: source/external id.
	e.Source, e.Subject, _ = strings.Cut(e.Key, "/")
	unreadable := func(why string) Entry {
		e.ID = fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
		e.Stage = "unknown"
		e.Reasons = []event.Reason{{Field: "(envelope)", Message: "the dead letter itself is unreadable: " + why}}
		e.setOriginal(m.Value)
		return e
	}
	var ev event.Event
	if err := event.Unmarshal(m.Value, &ev); err != nil {
		return unreadable(err.Error())
	}
	var dl event.DeadLetter
	if err := json.Unmarshal(ev.Data, &dl); err != nil {
		return unreadable("data is not a dead letter: " + err.Error())
	}
	e.ID, e.EntityType, e.Op, e.Stage, e.Reasons = ev.ID, ev.EntityType, ev.Op, dl.Stage, dl.Reasons
	if !ev.Time.IsZero() {
		e.Time = ev.Time.UTC()
	}
	if name := ev.SourceName(); name != "" {
		e.Source = name
	}
	if dl.Key != "" {
		e.Key = dl.Key
	}
	if e.Stage == "" {
		e.Stage = strings.TrimSuffix(strings.TrimPrefix(ev.Type, "socialhub."), ".record.rejected")
	}
	e.RecordTopic, e.RecordPartition, e.RecordOffset = dl.Topic, dl.Partition, dl.Offset
	if len(dl.Original) > 0 {
		e.original, e.originalJSON = dl.Original, true
		var orig struct {
			ID   string    `json:"id"`
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(dl.Original, &orig) == nil {
			e.OriginalID = orig.ID
			if !orig.Time.IsZero() {
				t := orig.Time.UTC()
				e.RecordTime = &t
			}
		}
	} else {
		e.setOriginal([]byte(dl.OriginalText))
	}
	if ev.Subject != "" {
		e.Subject = ev.Subject
	}
	return e
}

func (e *Entry) setOriginal(b []byte) {
	if utf8.Valid(b) && json.Valid(b) {
		e.original, e.originalJSON = b, true
		return
	}
	e.original = []byte(strings.ToValidUTF8(string(b), "\uFFFD"))
}
