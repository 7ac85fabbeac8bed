package quality_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

// The validate stage counts into the store as it goes; a replay of raw from the start (a new
// consumer group) reads every record again and changes no figure.
func TestValidateStageTally(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := kafkatest.New(t, 2)
	w := broker.NewWriter(c.Config)
	t.Cleanup(func() { _ = w.Close() })
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var msgs []kafka.Message
	add := func(id string, doc map[string]any) {
		data, err := json.Marshal(doc)
		require.NoError(t, err)
		ev := &event.Event{
			ID: event.NewID(), Source: event.SourceURI("dszn"), Type: event.Type("raw", schemas.EntityService, event.OpUpsert),
			Subject: id, Time: time.Now(), DataSchema: schemas.SchemaID(schemas.EntityService),
			EntityType: schemas.EntityService, Op: event.OpUpsert, Data: data,
		}
		value, err := event.Marshal(ev)
		require.NoError(t, err)
		msgs = append(msgs, kafka.Message{Topic: c.Topics.Raw, Key: []byte(event.Key("dszn", id)), Value: value})
	}
	for i := range 6 {
		id := fmt.Sprintf("S%d", i)
		d := service(id)
		d["phones"] = []any{map[string]any{"id": id + "/phone", "number": "8 (495) 123-45-67"}} // to E.164
		add(id, d)
	}
	bad := service("BAD")
	delete(bad, "status")
	add("BAD", bad)
	msgs = append(msgs, kafka.Message{Topic: c.Topics.Raw, Key: []byte("dszn/GARBAGE"), Value: []byte("not an event")})
	require.NoError(t, w.WriteMessages(ctx, msgs...))

	run := func(group string) {
		s := validate.New(validate.Options{
			Kafka: c.Config, Topics: c.Topics, GroupID: group, Validator: v, Producer: w, Tally: b.store,
			BatchSize: 3, BatchWait: 20 * time.Millisecond,
		})
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		require.Eventually(t, func() bool {
			q, err := b.store.SourceQuality(ctx, "dszn")
			return err == nil && q.Read == int64(len(msgs))
		}, 30*time.Second, 20*time.Millisecond)
		rcancel()
		require.NoError(t, <-done)
	}
	check := func() {
		q, err := b.store.SourceQuality(ctx, "dszn")
		require.NoError(t, err)
		require.Equal(t, int64(8), q.Read)
		require.Equal(t, int64(6), q.Valid)
		require.Equal(t, int64(2), q.Rejected)
		require.Equal(t, map[string]int64{"status": 1, "(envelope)": 1}, q.RejectedByField)
		require.Equal(t, map[string]int64{"phone": 6, "schedule": 6}, q.NormalizedFields)
	}
	run("first")
	check()
	run("replay")
	check()
}
