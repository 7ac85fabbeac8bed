package validate_test

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

// legacyServiceID is the dataschema events carried before the profile had versions.
const legacyServiceID = "https://socialhub.city/schemas/hsds-3.0/service.json"

// v1Doc is a version 1 service with HSDS 2.0's fees, which version 1 let through.
func v1Doc(id string) map[string]any {
	d := serviceDoc(id)
	d["fees"] = "бесплатно"
	return d
}

// A version 1 event comes out on valid as a version 2 document, claiming version 2.
func TestProcessUpgradesVersion1(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})
	for _, claim := range []string{schemas.SchemaIDVersion(schemas.EntityService, 1), legacyServiceID} {
		in := rawEvent(t, "DSZN-1", schemas.EntityService, event.OpUpsert, mustJSON(t, v1Doc("DSZN-1")))
		in.DataSchema = claim
		out, err := s.Process(rawMessage(t, topics, in))
		require.NoError(t, err)
		require.Equal(t, topics.Valid, out.Topic, "dlq: %s", out.Value)
		var ev event.Event
		require.NoError(t, event.Unmarshal(out.Value, &ev))
		require.Equal(t, "https://socialhub.city/schemas/hsds-3.0/v2/service.json", ev.DataSchema)
		var got map[string]any
		require.NoError(t, json.Unmarshal(ev.Data, &got))
		require.NotContains(t, got, "fees")
		require.Equal(t, "бесплатно", got["fees_description"])
		want, err := event.ContentHash(ev.Data)
		require.NoError(t, err)
		require.Equal(t, want, ev.ContentHash, "the hash is the upgraded document's")
	}

	// The same document claiming version 2 breaks its contract: version 2 has no fees.
	in := rawEvent(t, "DSZN-1", schemas.EntityService, event.OpUpsert, mustJSON(t, v1Doc("DSZN-1")))
	out, err := s.Process(rawMessage(t, topics, in))
	require.NoError(t, err)
	_, dl := decodeDeadLetter(t, out)
	require.Equal(t, []string{"fees"}, fields(dl.Reasons))

	// Without a dataschema the event claims the current version.
	in = rawEvent(t, "DSZN-1", schemas.EntityService, event.OpUpsert, mustJSON(t, serviceDoc("DSZN-1")))
	in.DataSchema = ""
	out, err = s.Process(rawMessage(t, topics, in))
	require.NoError(t, err)
	require.Equal(t, topics.Valid, out.Topic, "dlq: %s", out.Value)
}

// An event claiming a schema the hub does not know goes to dlq, saying which.
func TestProcessUnknownDataSchema(t *testing.T) {
	t.Parallel()
	topics := event.NewTopics(event.DefaultPrefix)
	s := validate.New(validate.Options{Topics: topics, Validator: newValidator(t)})
	for claim, msg := range map[string]string{
		"https://socialhub.city/schemas/hsds-3.0/v9/service.json":      "version 9",
		"https://example.org/service.json":                             "not a socialhub profile $id",
		"https://socialhub.city/schemas/hsds-3.0/v1/organization.json": "schema of organization, not of service",
	} {
		in := rawEvent(t, "DSZN-1", schemas.EntityService, event.OpUpsert, mustJSON(t, serviceDoc("DSZN-1")))
		in.DataSchema = claim
		out, err := s.Process(rawMessage(t, topics, in))
		require.NoError(t, err)
		_, dl := decodeDeadLetter(t, out)
		require.Equal(t, []string{"(envelope).dataschema"}, fields(dl.Reasons), claim)
		require.Contains(t, dl.Reasons[0].Message, msg)
	}
}

// The checker answers what the stage does, and says where JSON breaks.
func TestCheck(t *testing.T) {
	t.Parallel()
	c := validate.NewChecker(newValidator(t))

	res := c.Check(schemas.EntityService, "", mustJSON(t, messyDoc("DSZN-7")))
	require.Empty(t, res.Reasons)
	require.Equal(t, schemas.CurrentVersion, res.Version)
	canon, err := event.Canonical(res.Data)
	require.NoError(t, err)
	require.Equal(t, string(canon), string(res.Data), "Data is canonical JSON")
	want, err := event.ContentHash(res.Data)
	require.NoError(t, err)
	require.Equal(t, want, res.ContentHash)
	got := map[string]int{}
	res.Normalized.Each(func(field string, n int) { got[field] = n })
	require.Equal(t, map[string]int{"phone": 2, "email": 1, "website": 1, "schedule": 1, "schedule_unparsed": 1, "district": 1, "okrug": 1, "name": 1}, got)

	for data, msg := range map[string]string{
		"{\"id\": \"x\",\n \"name\": }": "invalid JSON at line 2, column 10: invalid character '}'",
		`{"id": "x"`:                    "invalid JSON at line 1, column 11: unexpected end of JSON input",
		`{"id": "x"} {}`:                "invalid JSON at line 1, column 13: more than one value",
		``:                              "no document",
	} {
		res := c.Check(schemas.EntityService, "", []byte(data))
		require.Len(t, res.Reasons, 1, data)
		require.Equal(t, "(root)", res.Reasons[0].Field)
		require.Contains(t, res.Reasons[0].Message, msg, data)
		require.Empty(t, res.ContentHash)
	}

	// An invalid document still comes back normalized, for the data owner to see.
	d := messyDoc("DSZN-8")
	delete(d, "status")
	res = c.Check(schemas.EntityService, "", mustJSON(t, d))
	require.Equal(t, []string{"status"}, fields(res.Reasons))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(res.Data, &doc))
	require.Equal(t, "Priem@tcso-marino.mos.ru", doc["email"])
	require.Empty(t, res.ContentHash)

	res = c.Check("spaceship", "", []byte(`{}`))
	require.Equal(t, []string{"(envelope).entitytype"}, fields(res.Reasons))
}

// Replaying raw written before version 2 — events claiming the legacy $id and version 1, with
// fees — lands every record on valid, as version 2 documents: a new version never makes old
// events unreadable.
func TestRunReplaysVersion1Events(t *testing.T) {
	t.Parallel()
	c := kafkatest.New(t, 1)
	w := broker.NewWriter(c.Config)
	t.Cleanup(func() { _ = w.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var msgs []kafka.Message
	for i := range 10 {
		id := fmt.Sprintf("OLD-%02d", i)
		in := rawEvent(t, id, schemas.EntityService, event.OpUpsert, mustJSON(t, v1Doc(id)))
		in.DataSchema = legacyServiceID
		if i%2 == 1 {
			in.DataSchema = schemas.SchemaIDVersion(schemas.EntityService, 1)
		}
		msg := rawMessage(t, c.Topics, in)
		msg.Partition, msg.Offset = 0, 0
		msgs = append(msgs, msg)
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))

	s := validate.New(validate.Options{
		Kafka: c.Config, Topics: c.Topics, GroupID: "replay", Validator: newValidator(t), Producer: w,
		BatchSize: 4, BatchWait: 20 * time.Millisecond,
	})
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	got := c.WaitCount(t, c.Topics.Valid, len(msgs), 30*time.Second)
	rcancel()
	require.NoError(t, <-done)
	for _, m := range got {
		var ev event.Event
		require.NoError(t, event.Unmarshal(m.Value, &ev))
		require.Equal(t, schemas.SchemaID(schemas.EntityService), ev.DataSchema)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(ev.Data, &doc))
		require.Equal(t, "бесплатно", doc["fees_description"])
	}
	require.Empty(t, c.ReadAll(t, c.Topics.DLQ), "nothing dead-lettered")
}
