package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/kafkatest"
)

func TestWriteAndReadBack(t *testing.T) {
	t.Parallel()
	c := kafkatest.New(t, 3)
	w := broker.NewWriter(c.Config)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var msgs []kafka.Message
	for i := 0; i < 100; i++ {
		msgs = append(msgs, kafka.Message{Topic: c.Topics.Raw, Key: []byte{byte(i)}, Value: []byte("x")})
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	got := c.ReadAll(t, c.Topics.Raw)
	require.Len(t, got, 100)
	n, err := broker.PartitionCount(ctx, c.Config, c.Topics.Raw)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	// EnsureTopics again is a no-op.
	require.NoError(t, broker.EnsureTopics(ctx, c.Config, broker.TopicSpec{Name: c.Topics.Raw, Partitions: 3}))
}

// The embedded broker keeps acknowledged records in its data directory across a restart.
func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e, err := broker.StartEmbedded(broker.EmbeddedOptions{DataDir: dir})
	require.NoError(t, err)
	c := kafkatest.Attach(t, e, 2)
	w := broker.NewWriter(c.Config)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Topic: c.Topics.Raw, Key: []byte("k"), Value: []byte("v")}))
	require.NoError(t, w.Close())
	e.Close()

	e2, err := broker.StartEmbedded(broker.EmbeddedOptions{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(e2.Close)
	c2 := kafkatest.Attach(t, e2, 2)
	got := c2.ReadAll(t, c2.Topics.Raw)
	require.Len(t, got, 1)
	require.Equal(t, "v", string(got[0].Value))
}
