// Package kafkatest gives each test its own in-process Kafka-protocol cluster (franz-go's kfake),
// reached with the real protocol through kafka-go, and helpers to read what a topic holds.
package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/event"
)

// Cluster is a test's own broker with the hub's topics created under a unique prefix.
type Cluster struct {
	Embedded *broker.Embedded
	Config   broker.Config
	Topics   event.Topics
}

// New starts an in-memory cluster for the test, creates the hub's topics with the given number of
// partitions, and closes the cluster when the test ends.
func New(t testing.TB, partitions int) *Cluster {
	t.Helper()
	e, err := broker.StartEmbedded(broker.EmbeddedOptions{})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	return Attach(t, e, partitions)
}

// Attach creates the hub's topics on an already running cluster.
func Attach(t testing.TB, e *broker.Embedded, partitions int) *Cluster {
	t.Helper()
	cfg := broker.Config{Brokers: e.Addrs(), ClientID: "socialhub-test", BatchTimeout: time.Millisecond, MaxWait: 50 * time.Millisecond}
	topics := event.NewTopics(event.DefaultPrefix)
	var specs []broker.TopicSpec
	for _, name := range topics.All() {
		specs = append(specs, broker.TopicSpec{Name: name, Partitions: partitions, Compacted: topics.Compacted(name)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, broker.EnsureTopics(ctx, cfg, specs...))
	return &Cluster{Embedded: e, Config: cfg, Topics: topics}
}

// ReadAll reads every record of a topic, from the beginning to its current end, across partitions.
func (c *Cluster) ReadAll(t testing.TB, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := broker.EndOffsets(ctx, c.Config, topic)
	require.NoError(t, err)
	var out []kafka.Message
	for p, end := range ends {
		if end == 0 {
			continue
		}
		rc := broker.ReaderConfig(c.Config, topic)
		rc.Partition = p
		r := kafka.NewReader(rc)
		for {
			m, err := r.FetchMessage(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			require.NoError(t, err)
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		require.NoError(t, r.Close())
	}
	return out
}

// WaitCount waits until a topic holds at least n records in all and returns them.
func (c *Cluster) WaitCount(t testing.TB, topic string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := broker.EndOffsets(ctx, c.Config, topic)
		cancel()
		require.NoError(t, err)
		var total int64
		for _, e := range ends {
			total += e
		}
		if total >= int64(n) {
			return c.ReadAll(t, topic)
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "timeout", "topic %s holds %d records, want %d", topic, total, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
