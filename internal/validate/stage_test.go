package validate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/metrics"
	"socialhub/internal/validate"
	"socialhub/schemas"
)

const source = "dszn-test"

var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// serviceDoc is a small service record the profile accepts.
func serviceDoc(id string) map[string]any {
	return map[string]any{
		"id":     id,
		"name":   "Комната прохлады",
		"status": "active",
		"email":  "cool@tcso.mos.ru",
		"organization": map[string]any{
			"id": "ORG-1", "name": `ГБУ ТЦСО "Марьино"`,
		},
		"service_at_locations": []any{map[string]any{
			"id": id + "/sal/0",
			"location": map[string]any{
				"id": "ORG-1/loc/1", "location_type": "physical", "name": "ТЦСО Марьино",
				"latitude": 55.65, "longitude": 37.74,
			},
		}},
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// rawEvent is the envelope a connector writes to raw for one record.
func rawEvent(t testing.TB, externalID, entity, op string, data []byte) *event.Event {
	t.Helper()
	ev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(source), Type: event.Type("raw", entity, op),
		Subject: externalID, Time: fixedNow.Add(-time.Hour), DataSchema: schemas.SchemaID(entity),
		EntityType: entity, Op: op, Data: data,
	}
	if len(data) > 0 && json.Valid(data) {
		h, err := event.ContentHash(data)
		require.NoError(t, err)
		ev.ContentHash = h
	}
	return ev
}

// rawMessage wraps an envelope as read from raw, keyed as connectors key it.
func rawMessage(t testing.TB, topics event.Topics, ev *event.Event) kafka.Message {
	t.Helper()
	value, err := event.Marshal(ev)
	require.NoError(t, err)
	return kafka.Message{
		Topic: topics.Raw, Partition: 1, Offset: 42, Key: []byte(event.Key(ev.SourceName(), ev.Subject)), Value: value,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte(event.ContentType)}},
	}
}

func newValidator(t testing.TB) *schemas.Validator {
	t.Helper()
	v, err := schemas.NewValidator()
	require.NoError(t, err)
	return v
}

// decodeDeadLetter checks a dlq record's envelope and returns its data.
func decodeDeadLetter(t testing.TB, m kafka.Message) (event.Event, event.DeadLetter) {
	t.Helper()
	var ev event.Event
	require.NoError(t, event.Unmarshal(m.Value, &ev))
	require.Equal(t, event.DeadLetterType(validate.StageName), ev.Type)
	var dl event.DeadLetter
	require.NoError(t, json.Unmarshal(ev.Data, &dl))
	require.Equal(t, validate.StageName, dl.Stage)
	require.NotEmpty(t, dl.Reasons, "a dead letter says why")
	return ev, dl
}

// counter reads a counter's value.
func counter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func fields(rs []event.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Field
	}
	return out
}

func TestProcessValidRecord(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	m := metrics.New()
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t), Metrics: m, Now: func() time.Time { return fixedNow }})

	// Spacing and key order differ from the canonical form; the hash must not care.
	doc := serviceDoc("DSZN-1")
	delete(doc, "status")
	indented, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)
	data := []byte("{ \"status\" : \"active\",\n" + string(indented[1:]))
	in := rawEvent(t, "DSZN-1", schemas.EntityService, event.OpUpsert, data)
	in.ContentHash = "stale-or-forged" // validate computes the hash itself
	msg := rawMessage(t, topics, in)

	out, err := s.Process(msg)
	require.NoError(t, err)
	require.Equal(t, topics.Valid, out.Topic)
	require.Equal(t, string(msg.Key), string(out.Key), "valid keeps the partition key")
	require.Equal(t, append(msg.Headers, kafka.Header{Key: event.EntityTypeHeader, Value: []byte(schemas.EntityService)}), out.Headers,
		"valid keeps the headers and names the entity type")

	var ev event.Event
	require.NoError(t, event.Unmarshal(out.Value, &ev))
	// The organization's name comes out with its quotes normalized, and the hash is the normalized
	// document's.
	normalized := serviceDoc("DSZN-1")
	normalized["organization"].(map[string]any)["name"] = "ГБУ ТЦСО «Марьино»"
	want, err := event.ContentHash(mustJSON(t, normalized))
	require.NoError(t, err)
	require.Equal(t, want, ev.ContentHash)
	require.NotEmpty(t, ev.ID)
	require.Equal(t, "socialhub.validate.service.upsert", ev.Type)
	require.Equal(t, schemas.SchemaID(schemas.EntityService), ev.DataSchema)
	require.Equal(t, in.Source, ev.Source)
	require.Equal(t, "DSZN-1", ev.Subject)
	require.Equal(t, schemas.EntityService, ev.EntityType)
	require.Equal(t, event.OpUpsert, ev.Op)
	require.True(t, in.Time.Equal(ev.Time), "the record keeps the time it was seen")
	require.JSONEq(t, string(mustJSON(t, normalized)), string(ev.Data))

	require.Equal(t, 1.0, counter(t, m.RecordsIn.WithLabelValues(validate.StageName)))
	require.Equal(t, 1.0, counter(t, m.NormalizedFields.WithLabelValues(source, "name")))
	require.Equal(t, 1.0, counter(t, m.RecordsOut.WithLabelValues(validate.StageName, metrics.OutcomeValid)))
	require.Equal(t, 0.0, counter(t, m.RecordsOut.WithLabelValues(validate.StageName, metrics.OutcomeRejected)))
}

func TestProcessDelete(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})
	msg := rawMessage(t, topics, rawEvent(t, "DSZN-9", schemas.EntityService, event.OpDelete, nil))

	out, err := s.Process(msg)
	require.NoError(t, err)
	require.Equal(t, topics.Valid, out.Topic)
	require.Equal(t, string(msg.Key), string(out.Key))
	var ev event.Event
	require.NoError(t, event.Unmarshal(out.Value, &ev))
	require.Equal(t, event.OpDelete, ev.Op)
	require.Equal(t, "socialhub.validate.service.delete", ev.Type)
	require.Equal(t, "DSZN-9", ev.Subject)
}

// Every invalid record goes to dlq, under its own key, with every reason naming the field, and
// with the original bytes to replay it.
func TestProcessInvalidRecords(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t), Now: func() time.Time { return fixedNow }})

	upsert := func(mutate func(d map[string]any)) func(t *testing.T) *event.Event {
		return func(t *testing.T) *event.Event {
			d := serviceDoc("DSZN-2")
			mutate(d)
			return rawEvent(t, "DSZN-2", schemas.EntityService, event.OpUpsert, mustJSON(t, d))
		}
	}
	for _, tc := range []struct {
		name   string
		ev     func(t *testing.T) *event.Event
		key    string   // Kafka key when not the record's own
		fields []string // every reason's field, in order
	}{
		{
			name:   "missing required property",
			ev:     upsert(func(d map[string]any) { delete(d, "name") }),
			fields: []string{"name"},
		},
		{
			name: "nested value out of range",
			ev: upsert(func(d map[string]any) {
				d["service_at_locations"].([]any)[0].(map[string]any)["location"].(map[string]any)["latitude"] = 200
			}),
			fields: []string{"service_at_locations.0.location.latitude"},
		},
		{
			name: "several violations, all reported",
			ev: upsert(func(d map[string]any) {
				delete(d, "status")
				d["email"] = "not an address"
				d["organization"].(map[string]any)["name"] = ""
			}),
			fields: []string{"email", "organization.name", "status"},
		},
		{
			name: "data not an object",
			ev: func(t *testing.T) *event.Event {
				return rawEvent(t, "DSZN-2", schemas.EntityService, event.OpUpsert, []byte(`[1,2]`))
			},
			fields: []string{"(root)"},
		},
		{
			name: "upsert without data",
			ev: func(t *testing.T) *event.Event {
				return rawEvent(t, "DSZN-2", schemas.EntityService, event.OpUpsert, nil)
			},
			fields: []string{"(root)"},
		},
		{
			name: "unknown entity type",
			ev: func(t *testing.T) *event.Event {
				return rawEvent(t, "DSZN-2", "spaceship", event.OpUpsert, []byte(`{}`))
			},
			fields: []string{"(envelope).entitytype"},
		},
		{
			name: "unknown op",
			ev: func(t *testing.T) *event.Event {
				return rawEvent(t, "DSZN-2", schemas.EntityService, "merge", []byte(`{}`))
			},
			fields: []string{"(envelope).op"},
		},
		{
			name:   "key does not match source and subject",
			ev:     upsert(func(map[string]any) {}),
			key:    source + "/DSZN-3",
			fields: []string{"(envelope).key"},
		},
		{
			name: "no subject, and an invalid document",
			ev: func(t *testing.T) *event.Event {
				d := serviceDoc("DSZN-2")
				delete(d, "organization")
				ev := rawEvent(t, "", schemas.EntityService, event.OpUpsert, mustJSON(t, d))
				return ev
			},
			key:    source + "/DSZN-2",
			fields: []string{"(envelope).subject", "(envelope).key", "organization"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.ev(t)
			msg := rawMessage(t, topics, in)
			if tc.key != "" {
				msg.Key = []byte(tc.key)
			}
			out, err := s.Process(msg)
			require.NoError(t, err)
			require.Equal(t, topics.DLQ, out.Topic)
			require.Equal(t, string(msg.Key), string(out.Key), "dlq keeps the partition key")

			ev, dl := decodeDeadLetter(t, out)
			require.Equal(t, tc.fields, fields(dl.Reasons), "reasons: %+v", dl.Reasons)
			for _, r := range dl.Reasons {
				require.NotEmpty(t, r.Message)
			}
			require.Equal(t, in.Source, ev.Source)
			require.Equal(t, in.Subject, ev.Subject)
			require.Equal(t, topics.Raw, dl.Topic)
			require.Equal(t, msg.Partition, dl.Partition)
			require.Equal(t, msg.Offset, dl.Offset)
			require.Equal(t, string(msg.Key), dl.Key)
			require.JSONEq(t, string(msg.Value), string(dl.Original), "the original travels whole")
		})
	}
}

// Bytes that are not a CloudEvents envelope go to dlq with an "(envelope)" reason: they never
// vanish and never stop the stage.
func TestProcessBadEnvelope(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})
	for name, value := range map[string][]byte{
		"truncated JSON":  []byte(`{"specversion":"1.0","id":`),
		"invalid UTF-8":   []byte("{\"id\":\"\xff\xfe\"}"),
		"empty value":     nil,
		"JSON array":      []byte(`[1,2,3]`),
		"plain text":      []byte("Комната прохлады;active"),
		"no id":           []byte(`{"specversion":"1.0","source":"socialhub/dszn-test","type":"t","subject":"X"}`),
		"wrong version":   []byte(`{"specversion":"0.3","id":"1","source":"socialhub/dszn-test","type":"t"}`),
		"time not a time": []byte(`{"specversion":"1.0","id":"1","source":"socialhub/dszn-test","type":"t","time":"yesterday"}`),
		"data not JSON":   []byte(`{"specversion":"1.0","id":"1","source":"socialhub/dszn-test","type":"t","data":}`),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := kafka.Message{Topic: topics.Raw, Partition: 0, Offset: 7, Key: []byte(source + "/X"), Value: value}
			out, err := s.Process(msg)
			require.NoError(t, err)
			require.Equal(t, topics.DLQ, out.Topic)
			require.Equal(t, string(msg.Key), string(out.Key))
			ev, dl := decodeDeadLetter(t, out)
			require.Equal(t, []string{"(envelope)"}, fields(dl.Reasons))
			require.Equal(t, event.SourceURI(source), ev.Source, "the source comes from the key")
			require.Equal(t, int64(7), dl.Offset)
			// The original is kept: as JSON when it was JSON, as text otherwise.
			if utf8.Valid(value) && json.Valid(value) {
				require.JSONEq(t, string(value), string(dl.Original))
			} else {
				require.Empty(t, dl.Original)
				require.Equal(t, strings.ToValidUTF8(string(value), "\uFFFD"), dl.OriginalText)
			}
		})
	}
}

// The stage is at-least-once: a record read again after a crash (written, not yet committed) is
// emitted again with the same key, data and content hash, which is what resolve deduplicates on
// (DESIGN invariant 3).
func TestProcessAgainIsDedupable(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})
	msg := rawMessage(t, topics, rawEvent(t, "DSZN-5", schemas.EntityService, event.OpUpsert, mustJSON(t, serviceDoc("DSZN-5"))))

	first, err := s.Process(msg)
	require.NoError(t, err)
	again, err := s.Process(msg)
	require.NoError(t, err)
	require.Equal(t, first.Topic, again.Topic)
	require.Equal(t, first.Key, again.Key)
	var a, b event.Event
	require.NoError(t, event.Unmarshal(first.Value, &a))
	require.NoError(t, event.Unmarshal(again.Value, &b))
	require.NotEmpty(t, a.ContentHash)
	require.Equal(t, a.ContentHash, b.ContentHash)
	require.Equal(t, string(a.Data), string(b.Data))
	a.ID, b.ID = "", ""
	require.Equal(t, a, b, "apart from its id, a re-emitted record is the same")
}

// committedOffsets returns the group's committed offset of each partition of topic (-1: none). It
// returns an error, not a test failure, while the group does not exist yet.
func committedOffsets(c *kafkatest.Cluster, group, topic string, partitions int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	client := &kafka.Client{Addr: kafka.TCP(c.Config.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	out := make(map[int]int64, partitions)
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// endOffsets is broker.EndOffsets with every partition listed, empty ones included.
func endOffsets(t testing.TB, c *kafkatest.Cluster, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := broker.EndOffsets(ctx, c.Config, topic)
	require.NoError(t, err)
	return ends
}

// The full loop: a mix of records on raw comes out split between valid and dlq, exactly once each;
// the position is committed after the writes, so a restarted stage goes on where it stopped and
// emits nothing twice.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	const partitions = 2
	const group = "validate-test"
	c := kafkatest.New(t, partitions)
	w := broker.NewWriter(c.Config)
	t.Cleanup(func() { _ = w.Close() })
	v := newValidator(t)
	m := metrics.New()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// produce writes n valid records and the given invalid ones; it returns their keys.
	seq := 0
	produce := func(nValid int, invalid ...kafka.Message) (valid, dead []string) {
		var msgs []kafka.Message
		for range nValid {
			seq++
			id := fmt.Sprintf("DSZN-%04d", seq)
			msg := rawMessage(t, c.Topics, rawEvent(t, id, schemas.EntityService, event.OpUpsert, mustJSON(t, serviceDoc(id))))
			msg.Partition, msg.Offset = 0, 0
			msgs = append(msgs, msg)
			valid = append(valid, string(msg.Key))
		}
		for _, msg := range invalid {
			msgs = append(msgs, msg)
			dead = append(dead, string(msg.Key))
		}
		require.NoError(t, w.WriteMessages(ctx, msgs...))
		return valid, dead
	}
	invalid := func(id string, mutate func(d map[string]any)) kafka.Message {
		d := serviceDoc(id)
		mutate(d)
		msg := rawMessage(t, c.Topics, rawEvent(t, id, schemas.EntityService, event.OpUpsert, mustJSON(t, d)))
		msg.Partition, msg.Offset = 0, 0
		return msg
	}
	garbage := func(id string, value string) kafka.Message {
		return kafka.Message{Topic: c.Topics.Raw, Key: []byte(source + "/" + id), Value: []byte(value)}
	}

	// run starts a stage and returns a function that stops it and reports how it ended.
	run := func() func() error {
		s := validate.New(validate.Options{
			Kafka: c.Config, Topics: c.Topics, GroupID: group, Validator: v, Producer: w, Metrics: m,
			BatchSize: 7, BatchWait: 20 * time.Millisecond, // several batches
		})
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		return func() error {
			rcancel()
			select {
			case err := <-done:
				return err
			case <-time.After(30 * time.Second):
				return fmt.Errorf("stage did not stop")
			}
		}
	}
	// waitCommitted waits until the group's position is the end of raw on every partition.
	waitCommitted := func() {
		ends := endOffsets(t, c, c.Topics.Raw)
		require.Eventually(t, func() bool {
			got, err := committedOffsets(c, group, c.Topics.Raw, partitions)
			if err != nil {
				return false // the group may not exist yet
			}
			for p := range partitions {
				if got[p] != ends[p] {
					return false
				}
			}
			return true
		}, 30*time.Second, 20*time.Millisecond, "raw position committed up to %v", ends)
	}
	// check reads valid and dlq and compares their keys with what was produced, counting repeats.
	check := func(wantValid, wantDead []string) {
		t.Helper()
		got := c.WaitCount(t, c.Topics.Valid, len(wantValid), 30*time.Second)
		var keys []string
		for _, msg := range got {
			var ev event.Event
			require.NoError(t, event.Unmarshal(msg.Value, &ev))
			require.NotEmpty(t, ev.ContentHash)
			require.Equal(t, event.Key(ev.SourceName(), ev.Subject), string(msg.Key))
			require.Contains(t, msg.Headers, kafka.Header{Key: event.EntityTypeHeader, Value: []byte(ev.EntityType)},
				"the resolve stages skip each other's records by this header")
			keys = append(keys, string(msg.Key))
		}
		require.ElementsMatch(t, wantValid, keys, "valid holds each valid record once")

		got = c.WaitCount(t, c.Topics.DLQ, len(wantDead), 30*time.Second)
		keys = keys[:0]
		for _, msg := range got {
			_, dl := decodeDeadLetter(t, msg)
			require.Equal(t, c.Topics.Raw, dl.Topic)
			keys = append(keys, string(msg.Key))
		}
		require.ElementsMatch(t, wantDead, keys, "dlq holds each invalid record once")
	}

	valid1, dead1 := produce(20,
		invalid("BAD-1", func(d map[string]any) { delete(d, "name") }),
		invalid("BAD-2", func(d map[string]any) { d["status"] = "open" }),
		garbage("BAD-3", `{"specversion":`),
		garbage("BAD-4", "\xff\xfe not even UTF-8"),
	)
	stop := run()
	waitCommitted()
	require.NoError(t, stop())
	check(valid1, dead1)

	// A new stage in the same group starts from the committed position.
	valid2, dead2 := produce(5, invalid("BAD-5", func(d map[string]any) { delete(d, "organization") }))
	stop = run()
	waitCommitted()
	require.NoError(t, stop())
	check(slices.Concat(valid1, valid2), slices.Concat(dead1, dead2))

	// Invariant 4: counts in = counts out.
	in := counter(t, m.RecordsIn.WithLabelValues(validate.StageName))
	outValid := counter(t, m.RecordsOut.WithLabelValues(validate.StageName, metrics.OutcomeValid))
	outRejected := counter(t, m.RecordsOut.WithLabelValues(validate.StageName, metrics.OutcomeRejected))
	require.Equal(t, float64(len(valid1)+len(valid2)+len(dead1)+len(dead2)), in)
	require.Equal(t, float64(len(valid1)+len(valid2)), outValid)
	require.Equal(t, float64(len(dead1)+len(dead2)), outRejected)
}
