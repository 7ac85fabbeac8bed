package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"socialhub/internal/event"
)

// Fetcher is the part of a kafka-go Reader a stage needs.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// FetchBatch blocks until one record arrives, then keeps taking records until max are in hand or
// wait has passed since the first. It returns what it has when ctx ends after the first record.
func FetchBatch(ctx context.Context, r Fetcher, buf []kafka.Message, max int, wait time.Duration) ([]kafka.Message, error) {
	buf = buf[:0]
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return buf, err
	}
	buf = append(buf, m)
	if max <= 1 {
		return buf, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(buf) < max {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return buf, nil
			}
			return buf, err
		}
		buf = append(buf, m)
	}
	return buf, nil
}

// DeadLetter builds the dlq record for a message a stage rejects: same key, the reasons, and the
// original bytes kept whole so `dlq replay` can send it through again.
func DeadLetter(stage string, m kafka.Message, ev *event.Event, reasons []event.Reason, now time.Time) (kafka.Message, error) {
	dl := event.DeadLetter{
		Stage: stage, Reasons: reasons, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
	}
	if utf8.Valid(m.Value) && json.Valid(m.Value) {
		dl.Original = m.Value
	} else {
		dl.OriginalText = strings.ToValidUTF8(string(m.Value), "\uFFFD")
	}
	data, err := json.Marshal(dl)
	if err != nil {
		return kafka.Message{}, err
	}
	out := &event.Event{
		ID:   event.NewID(),
		Type: event.DeadLetterType(stage),
		Time: now.UTC(),
		Data: data,
	}
	if ev != nil {
		out.Source, out.Subject, out.EntityType, out.Op = ev.Source, ev.Subject, ev.EntityType, ev.Op
	}
	if out.Source == "" {
		src, _, _ := strings.Cut(string(m.Key), "/")
		out.Source = event.SourceURI(strings.ToValidUTF8(src, "?"))
	}
	value, err := event.Marshal(out)
	if err != nil {
		return kafka.Message{}, err
	}
	return kafka.Message{Key: m.Key, Value: value, Headers: []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}}}, nil
}
