package resolve_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/residents"
	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
	"socialhub/internal/pseudonym"
	"socialhub/internal/resolve"
	"socialhub/schemas"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	db          *pgtest.DB
	kafka       *kafkatest.Cluster
	writer      *kafka.Writer
	eligibility *eligibility.Store
	catalog     *catalog.Store
	group       string
}

// setup starts a resolve stage on its own database and cluster; it stops with the test.
func setup(t *testing.T) testBundle {
	t.Helper()
	db := pgtest.NewDB(t, catalog.Migrations(), changes.Migrations(), resolve.Migrations(), eligibility.Migrations())
	kc := kafkatest.New(t, 2)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	b := testBundle{
		db: db, kafka: kc, writer: w, group: "resolve-test",
		eligibility: eligibility.NewStore(db.Pool), catalog: catalog.NewStore(db.Pool),
	}
	stage := resolve.New(resolve.Options{
		Pool: db.Pool, Catalog: b.catalog, Eligibility: b.eligibility, Outbox: changes.NewOutbox(db.Pool),
		Kafka: kc.Config, Topics: kc.Topics, GroupID: b.group, Producer: w,
		BatchSize: 100, BatchWait: 20 * time.Millisecond,
	})
	runStage(t, stage)
	return b
}

// runStage runs stage until the test ends.
func runStage(t *testing.T, stage *resolve.Stage) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// residentRecords reads n demo residents through the residents connector, as the hub does.
func residentRecords(t *testing.T, n int) []connectors.Record {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, demo.WriteResidentsSnapshot(&buf, demo.FormatJSONL, n, 21))
	path := filepath.Join(t.TempDir(), "residents.jsonl")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	cfg, err := config.NewSource("residents", residents.KindName, "", map[string]any{"mode": "snapshot", "format": "jsonl", "path": path})
	require.NoError(t, err)
	key := hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	src, err := residents.New(cfg,
		connectors.Deps{Getenv: func(name string) string {
			if name == pseudonym.EnvKey {
				return key
			}
			return ""
		}})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, src.Open(ctx, nil))
	defer src.Close(ctx)
	var out []connectors.Record
	for {
		r, err := src.Read(ctx)
		if errors.Is(err, connectors.ErrEndOfInput) {
			return out
		}
		require.NoError(t, err)
		out = append(out, r)
	}
}

// message wraps a record as the validate stage writes it to valid.
func message(t *testing.T, topic, source, entityType, op, subject string, data []byte) kafka.Message {
	t.Helper()
	ev := &event.Event{
		ID: event.NewID(), Source: event.SourceURI(source), Type: event.Type("validate", entityType, op),
		Subject: subject, Time: time.Now().UTC(), DataSchema: schemas.SchemaID(entityType),
		EntityType: entityType, Op: op, Data: data,
	}
	if data != nil {
		h, err := event.ContentHash(data)
		require.NoError(t, err)
		ev.ContentHash = h
	}
	value, err := event.Marshal(ev)
	require.NoError(t, err)
	return kafka.Message{Topic: topic, Key: []byte(event.Key(source, subject)), Value: value}
}

func (b testBundle) write(t *testing.T, msgs ...kafka.Message) {
	t.Helper()
	require.NoError(t, b.writer.WriteMessages(context.Background(), msgs...))
}

// waitConsumed waits until the stage's stored offsets cover everything valid holds.
func (b testBundle) waitConsumed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		ends, err := broker.EndOffsets(ctx, b.kafka.Config, b.kafka.Topics.Valid)
		require.NoError(t, err)
		offs, err := resolve.Offsets(ctx, b.db.Pool, b.group, b.kafka.Topics.Valid)
		require.NoError(t, err)
		for p, end := range ends {
			if offs[p] < end {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
}

func (b testBundle) lastUpdate(t *testing.T) time.Time {
	t.Helper()
	var ts time.Time
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT max(updated_at) FROM eligibility_residents`).Scan(&ts))
	return ts
}

func TestResidentsLandInTheEligibilityStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	recs := residentRecords(t, 300)
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		require.Nil(t, r.Reasons)
		msgs[i] = message(t, b.kafka.Topics.Valid, "residents", r.EntityType, r.Op, r.ExternalID, r.Data)
	}
	b.write(t, msgs...)
	b.waitConsumed(t)
	n, err := b.eligibility.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 300, n)
	got, err := b.eligibility.Get(ctx, recs[42].ExternalID)
	require.NoError(t, err)
	require.Equal(t, "residents", got.Source)
	require.JSONEq(t, string(recs[42].Data), string(got.Facts))
	cat, err := b.catalog.Count(ctx)
	require.NoError(t, err)
	require.Zero(t, cat[catalog.CountSourceRecords], "residents never enter the catalog")

	// Replaying the same records (as a replay of valid from the beginning would) changes nothing.
	before := b.lastUpdate(t)
	for i, r := range recs {
		msgs[i] = message(t, b.kafka.Topics.Valid, "residents", r.EntityType, r.Op, r.ExternalID, r.Data)
	}
	b.write(t, msgs...)
	b.waitConsumed(t)
	require.Equal(t, before, b.lastUpdate(t))
	n, err = b.eligibility.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 300, n)
	outbox, err := changes.NewOutbox(b.db.Pool).Count(ctx)
	require.NoError(t, err)
	require.Zero(t, outbox, "eligibility facts are not broadcast as catalog changes")

	// A delete removes one resident.
	b.write(t, message(t, b.kafka.Topics.Valid, "residents", schemas.EntityResident, event.OpDelete, recs[7].ExternalID, nil))
	b.waitConsumed(t)
	_, err = b.eligibility.Get(ctx, recs[7].ExternalID)
	require.ErrorIs(t, err, eligibility.ErrNotFound)
	n, err = b.eligibility.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 299, n)
}

// TestBadResidentGoesToDLQ: a resident record the store refuses, in a batch with good residents
// and a service, is dead-lettered with its reason; the others land.
func TestBadResidentGoesToDLQ(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	recs := residentRecords(t, 20)
	var msgs []kafka.Message
	for _, r := range recs {
		msgs = append(msgs, message(t, b.kafka.Topics.Valid, "residents", r.EntityType, r.Op, r.ExternalID, r.Data))
	}
	// A subject that is not a pseudonym (a raw national id that slipped through).
	msgs = append(msgs, message(t, b.kafka.Topics.Valid, "residents", schemas.EntityResident, event.OpUpsert, "11223344595", recs[0].Data))
	service, err := json.Marshal(map[string]any{
		"id": "DSZN-1", "name": "Семейная медиация", "status": "active",
		"organization": map[string]any{"id": "ORG-1", "name": "ГБУ ТЦСО «Марьино»"},
		"service_at_locations": []any{map[string]any{"id": "DSZN-1/sal/0", "location": map[string]any{
			"id": "ORG-1/loc", "location_type": "physical", "name": "Филиал Марьино",
			"addresses": []any{map[string]any{"id": "ORG-1/loc/addr", "address_1": "ул. Братиславская, д. 14",
				"city": "Москва", "country": "RU", "address_type": "physical"}},
		}}},
	})
	require.NoError(t, err)
	msgs = append(msgs, message(t, b.kafka.Topics.Valid, "dszn", schemas.EntityService, event.OpUpsert, "DSZN-1", service))
	b.write(t, msgs...)
	b.waitConsumed(t)

	n, err := b.eligibility.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 20, n)
	cat, err := b.catalog.Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, cat[catalog.EntityService], "the service went to the catalog")
	dead := b.kafka.WaitCount(t, b.kafka.Topics.DLQ, 1, 10*time.Second)
	require.Len(t, dead, 1)
	var ev event.Event
	require.NoError(t, event.Unmarshal(dead[0].Value, &ev))
	var dl event.DeadLetter
	require.NoError(t, json.Unmarshal(ev.Data, &dl))
	require.Equal(t, resolve.StageName, dl.Stage)
	require.Contains(t, dl.Reasons[0].Message, "not a pseudonym")
}
