package changes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/event"
	"socialhub/internal/metrics"
	"socialhub/internal/rawjson"
)

// relayLockKey is the advisory lock that makes one relay at a time the publisher, which keeps
// publication in seq order. It must differ from every other advisory lock key of the hub: the relay
// holds it for as long as it runs, so sharing store's migration lock key ("socialhu") made every
// Migrate (a second hub process starting, `socialhub migrate`) wait forever behind a running relay.
const relayLockKey = 0x736f6369616c7279 // "socialry"

// RelayOptions configures the relay.
type RelayOptions struct {
	Outbox   *Outbox
	Producer interface {
		WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	}
	Topics    event.Topics
	Metrics   *metrics.Metrics
	Logger    *slog.Logger
	Interval  time.Duration
	BatchSize int
	// Notifier, if set, is woken after every published batch, so SSE streams and webhook workers
	// of this process see new events at once. Other processes hear of them through PostgreSQL's
	// NOTIFY on NotifyChannel (see Listener).
	Notifier *Notifier
	// Kafka, when it names brokers, lets a relay that takes over check the changes topic's tail
	// for events a killed relay published but did not mark, so they are not published twice (see
	// recoverUnmarked). Without it the relay is at-least-once.
	Kafka broker.Config
}

// Relay publishes the outbox to Kafka.
type Relay struct {
	opts RelayOptions
	// backlogAt is when the backlog gauge was last counted (by the one goroutine running Run).
	backlogAt time.Time
}

// backlogEvery bounds how often the relay counts the unpublished rows for the backlog gauge: the
// count walks the whole backlog, which during a large ingest is long, and a batch comes every few
// milliseconds. It counts only behind a full batch: a short one is every unpublished row the relay
// can see, which says the backlog without counting.
const backlogEvery = time.Second

// NewRelay returns a relay.
func NewRelay(opts RelayOptions) *Relay {
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Relay{opts: opts}
}

// ChangeData is the data of a change event on the changes topic.
type ChangeData struct {
	Seq           int64           `json:"seq"`
	EntityType    string          `json:"entity_type"`
	ID            string          `json:"id"`
	Op            string          `json:"op"`
	Version       int64           `json:"version"`
	ChangedFields []string        `json:"changed_fields,omitempty"`
	Entity        json.RawMessage `json:"entity,omitempty"`
}

// Run publishes until ctx ends. Only the relay holding the advisory lock publishes; others wait.
func (r *Relay) Run(ctx context.Context) error {
	for {
		err := r.runLocked(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.opts.Logger.Warn("outbox relay failed, retrying", "error", err)
			r.opts.Metrics.Error(metrics.StageRelay)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (r *Relay) runLocked(ctx context.Context) error {
	conn, err := r.opts.Outbox.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("error acquiring connection: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(relayLockKey)).Scan(&locked); err != nil {
		return fmt.Errorf("error taking relay lock: %w", err)
	}
	if !locked {
		return nil // another relay publishes; try again later
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(relayLockKey)); err != nil {
			// Closing the session is what surely releases a session lock; a pooled connection
			// returned with the lock still held would keep every other relay out.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if err := r.recoverUnmarked(ctx, conn.Conn()); err != nil {
		return err
	}
	for {
		n, err := r.publishBatch(ctx, conn.Conn())
		if err != nil {
			return err
		}
		if n == r.opts.BatchSize {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.opts.Interval):
		}
	}
}

func (r *Relay) publishBatch(ctx context.Context, conn *pgx.Conn) (int, error) {
	rows, err := conn.Query(ctx, `
		SELECT seq, entity_type, entity_id, op, version, changed_fields, doc
		FROM changes_outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1`, r.opts.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("error reading outbox: %w", err)
	}
	var entries []Entry
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Seq, &e.EntityType, &e.EntityID, &e.Op, &e.Version, &e.ChangedFields, &e.Doc); err != nil {
			rows.Close()
			return 0, fmt.Errorf("error reading outbox: %w", err)
		}
		entries = append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("error reading outbox: %w", err)
	}
	if r.opts.Metrics != nil {
		switch {
		case len(entries) < r.opts.BatchSize:
			// A short read is every unpublished row the relay can see: no need to count them.
			r.opts.Metrics.OutboxBacklog.Set(float64(len(entries)))
		case time.Since(r.backlogAt) >= backlogEvery:
			r.backlogAt = time.Now()
			var backlog int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM changes_outbox WHERE published_at IS NULL`).Scan(&backlog); err == nil {
				r.opts.Metrics.OutboxBacklog.Set(float64(backlog))
			}
		}
	}
	if len(entries) == 0 {
		return 0, nil
	}
	msgs := make([]kafka.Message, 0, 2*len(entries))
	seqs := make([]int64, len(entries))
	for i, e := range entries {
		seqs[i] = e.Seq
		ch, cat, err := r.messages(e)
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, ch, cat)
	}
	// One synchronous write: per key, Kafka keeps the order of the batch, so per-entity order holds.
	if err := r.opts.Producer.WriteMessages(ctx, msgs...); err != nil {
		return 0, fmt.Errorf("error publishing %d change events: %w", len(entries), err)
	}
	// Marked only after Kafka acknowledged: a crash between the two publishes again (consumers
	// de-duplicate by event id, which is derived from seq), never loses.
	if err := markPublished(ctx, conn, seqs); err != nil {
		return 0, err
	}
	if r.opts.Notifier != nil {
		r.opts.Notifier.Notify()
	}
	if r.opts.Metrics != nil {
		r.opts.Metrics.RecordsOut.WithLabelValues("relay", metrics.OutcomePublished).Add(float64(len(entries)))
	}
	return len(entries), nil
}

func (r *Relay) messages(e Entry) (kafka.Message, kafka.Message, error) {
	data, err := appendChangeData(make([]byte, 0, 160+len(e.Doc)), e)
	if err != nil {
		return kafka.Message{}, kafka.Message{}, fmt.Errorf("error encoding change %d: %w", e.Seq, err)
	}
	// Any op flows through to the event type (created, updated, merged, deleted, ...). An entity
	// without a document after the change (deleted, or merged away into another) is gone: the
	// envelope's op is delete and the compacted topic gets a tombstone.
	op := event.OpUpsert
	if len(e.Doc) == 0 || e.Op == catalog.ChangeDeleted {
		op = event.OpDelete
	}
	headers := []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}}
	ev := &event.Event{
		ID: "change-" + strconv.FormatInt(e.Seq, 10), Source: event.SourceURI("catalog"),
		Type: event.Type("catalog", e.EntityType, e.Op), Subject: e.EntityID, Time: time.Now().UTC(),
		EntityType: e.EntityType, Op: op, Data: data,
	}
	value, err := event.Marshal(ev)
	if err != nil {
		return kafka.Message{}, kafka.Message{}, err
	}
	change := kafka.Message{Topic: r.opts.Topics.Changes, Key: []byte(e.EntityID), Value: value, Headers: headers}
	state := kafka.Message{Topic: r.opts.Topics.Catalog, Key: []byte(e.EntityID), Headers: headers}
	if op == event.OpUpsert {
		sev := &event.Event{
			ID: "state-" + strconv.FormatInt(e.Seq, 10), Source: event.SourceURI("catalog"),
			Type: event.Type("catalog", e.EntityType, "state"), Subject: e.EntityID, Time: ev.Time,
			EntityType: e.EntityType, Op: op, Data: e.Doc,
		}
		if state.Value, err = event.Marshal(sev); err != nil {
			return kafka.Message{}, kafka.Message{}, err
		}
	} // else: a nil value is the compacted topic's tombstone
	return change, state, nil
}

// appendChangeData writes e as the ChangeData of its event: what encoding/json writes of it, without
// HTML escapes (as event.Marshal), in one pass and one buffer; the entity is compacted.
func appendChangeData(b []byte, e Entry) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"entity_type":`...)
	b = rawjson.AppendString(b, e.EntityType)
	b = append(b, `,"id":`...)
	b = rawjson.AppendString(b, e.EntityID)
	b = append(b, `,"op":`...)
	b = rawjson.AppendString(b, e.Op)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	if len(e.ChangedFields) > 0 {
		b = append(b, `,"changed_fields":[`...)
		for i, f := range e.ChangedFields {
			if i > 0 {
				b = append(b, ',')
			}
			b = rawjson.AppendString(b, f)
		}
		b = append(b, ']')
	}
	if len(e.Doc) > 0 {
		b = append(b, `,"entity":`...)
		var err error
		if b, err = rawjson.AppendCompact(b, e.Doc); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// NotifyChannel is the PostgreSQL NOTIFY channel on which the relay announces published batches;
// the payload is the last pub_seq.
const NotifyChannel = "socialhub_changes"

// markPublished marks rows published and hands them their pub_seq, in seq order, in one statement
// together with the feed's counter: the rows and the counter become visible at once, and since
// only the lock holder runs it, pub_seq grows in commit order (see migration 002). Rows that
// already have one keep it. The NOTIFY is sent when the statement's transaction commits.
func markPublished(ctx context.Context, conn *pgx.Conn, seqs []int64) error {
	_, err := conn.Exec(ctx, `
		WITH todo AS (
			SELECT o.seq, row_number() OVER (ORDER BY o.seq) AS n
			FROM changes_outbox o WHERE o.seq = ANY($1) AND o.pub_seq IS NULL
		), head AS (
			UPDATE changes_feed SET last_pub_seq = last_pub_seq + (SELECT count(*) FROM todo)
			RETURNING last_pub_seq - (SELECT count(*) FROM todo) AS base, last_pub_seq
		), notified AS (
			SELECT pg_notify('`+NotifyChannel+`', head.last_pub_seq::text) FROM head
		)
		UPDATE changes_outbox o SET published_at = now(), pub_seq = head.base + todo.n
		FROM todo, head, (SELECT count(*) FROM notified) AS n
		WHERE o.seq = todo.seq`, seqs)
	if err != nil {
		return fmt.Errorf("error marking change events published: %w", err)
	}
	return nil
}
