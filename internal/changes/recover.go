package changes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/event"
)

// recoverWindow is how many records per partition the first look at the changes topic's tail
// reads; it doubles until it reaches a record the outbox already marked published.
const recoverWindow = 256

// recoverUnmarked runs when a relay takes the lock. A relay killed between Kafka's acknowledgement
// and marking its rows left events on the changes topic that the outbox still lists as unpublished;
// publishing them again would make an entity's versions go backwards on the topic (v1 v2 v1 v2).
// Since only the lock holder writes to the topic, such events are the records after the last
// marked one in each partition: it reads that tail and marks them published, without publishing
// them again. Events of a batch that never reached Kafka are not on the tail and are published
// normally.
func (r *Relay) recoverUnmarked(ctx context.Context, conn *pgx.Conn) error {
	cfg := r.opts.Kafka
	if len(cfg.Brokers) == 0 {
		return nil // no way to look: at-least-once, consumers de-duplicate by event id and version
	}
	unmarked := map[int64]bool{}
	rows, err := conn.Query(ctx, `SELECT seq FROM changes_outbox WHERE published_at IS NULL`)
	if err != nil {
		return fmt.Errorf("error reading unpublished events: %w", err)
	}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return fmt.Errorf("error reading unpublished events: %w", err)
		}
		unmarked[seq] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("error reading unpublished events: %w", err)
	}
	if len(unmarked) == 0 {
		return nil
	}
	ends, err := broker.EndOffsets(ctx, cfg, r.opts.Topics.Changes)
	if err != nil {
		return err
	}
	var found []int64
	for p, end := range ends {
		seqs, err := r.tailSeqs(ctx, cfg, p, end, unmarked)
		if err != nil {
			return err
		}
		found = append(found, seqs...)
	}
	if len(found) == 0 {
		return nil
	}
	// Marked in seq order, like any batch: their feed positions follow the order they were written in.
	if err := markPublished(ctx, conn, found); err != nil {
		return err
	}
	r.opts.Logger.Info("outbox relay found events published by a relay that stopped before marking them",
		"events", len(found))
	if r.opts.Notifier != nil {
		r.opts.Notifier.Notify()
	}
	return nil
}

// tailSeqs returns the seqs of unmarked events after the last marked event of a partition.
func (r *Relay) tailSeqs(ctx context.Context, cfg broker.Config, partition int, end int64, unmarked map[int64]bool) ([]int64, error) {
	for window := int64(recoverWindow); ; window *= 2 {
		start := max(0, end-window)
		seqs, err := readSeqs(ctx, cfg, r.opts.Topics.Changes, partition, start, end)
		if err != nil {
			return nil, err
		}
		last := -1 // index of the last record that is not an unmarked event
		for i, s := range seqs {
			if !unmarked[s] {
				last = i
			}
		}
		if last >= 0 || start == 0 {
			return append([]int64(nil), seqs[last+1:]...), nil
		}
	}
}

// readSeqs reads the outbox seqs of the change events at offsets [start, end) of a partition; a
// record that is not a change event counts as seq 0 (never unmarked).
func readSeqs(ctx context.Context, cfg broker.Config, topic string, partition int, start, end int64) ([]int64, error) {
	if start >= end {
		return nil, nil
	}
	rc := broker.ReaderConfig(cfg, topic)
	rc.Partition = partition
	rd := kafka.NewReader(rc)
	defer rd.Close()
	if err := rd.SetOffset(start); err != nil {
		return nil, fmt.Errorf("error reading %s/%d: %w", topic, partition, err)
	}
	var out []int64
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, fmt.Errorf("error reading %s/%d: %w", topic, partition, err)
		}
		var ev event.Event
		var seq int64
		if event.Unmarshal(m.Value, &ev) == nil && strings.HasPrefix(ev.ID, "change-") {
			seq, _ = strconv.ParseInt(strings.TrimPrefix(ev.ID, "change-"), 10, 64)
		}
		out = append(out, seq)
		if m.Offset+1 >= end {
			return out, nil
		}
	}
}
