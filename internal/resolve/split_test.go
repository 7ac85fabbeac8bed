package resolve_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/eligibility"
	"socialhub/internal/event"
	"socialhub/internal/kafkatest"
	"socialhub/internal/metrics"
	"socialhub/internal/pgtest"
	"socialhub/internal/resolve"
	"socialhub/schemas"
)

// TestTwoGroupsShareValid runs the hub's two resolve stages on one valid topic: the catalog's and
// the residents'. Each applies its own records and skips the other's (by header, or by decoding
// records written without one), both offsets reach the end, every record is counted once, and a
// record nobody can decode is dead-lettered once.
func TestTwoGroupsShareValid(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, catalog.Migrations(), changes.Migrations(), resolve.Migrations(), eligibility.Migrations())
	kc := kafkatest.New(t, 2)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })
	m := metrics.New()
	elig, cat := eligibility.NewStore(db.Pool), catalog.NewStore(db.Pool)
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	for _, records := range []resolve.Records{resolve.CatalogRecords, resolve.ResidentRecords} {
		stage := resolve.New(resolve.Options{
			Pool: db.Pool, Catalog: cat, Eligibility: elig, Outbox: changes.NewOutbox(db.Pool),
			Kafka: kc.Config, Topics: kc.Topics, Producer: w, Metrics: m, Records: records,
			BatchSize: 50, BatchWait: 20 * time.Millisecond,
		})
		d := make(chan error, 1)
		go func() { d <- stage.Run(ctx) }()
		done = append(done, d)
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			require.NoError(t, <-d)
		}
	})

	recs := residentRecords(t, 120)
	var msgs []kafka.Message
	for i, r := range recs {
		msg := message(t, kc.Topics.Valid, "residents", r.EntityType, r.Op, r.ExternalID, r.Data)
		if i%2 == 0 { // half as validate writes them now, half as before the header existed
			msg.Headers = []kafka.Header{{Key: event.EntityTypeHeader, Value: []byte(schemas.EntityResident)}}
		}
		msgs = append(msgs, msg)
	}
	svc := message(t, kc.Topics.Valid, "dszn", schemas.EntityService, event.OpUpsert, "DSZN-1", []byte(`{"id":"DSZN-1","name":"Семейная медиация","status":"active","organization":{"id":"ORG-1","name":"ГБУ ТЦСО «Марьино»"}}`))
	svc.Headers = []kafka.Header{{Key: event.EntityTypeHeader, Value: []byte(schemas.EntityService)}}
	msgs = append(msgs, svc, kafka.Message{Topic: kc.Topics.Valid, Key: []byte("dszn/broken"), Value: []byte(`{"not an envelope`)})
	require.NoError(t, w.WriteMessages(context.Background(), msgs...))

	ends, err := broker.EndOffsets(context.Background(), kc.Config, kc.Topics.Valid)
	require.NoError(t, err)
	for _, group := range []string{"socialhub-resolve", "socialhub-resolve-residents"} {
		require.Eventually(t, func() bool {
			offs, err := resolve.Offsets(context.Background(), db.Pool, group, kc.Topics.Valid)
			require.NoError(t, err)
			for p, end := range ends {
				if offs[p] < end {
					return false
				}
			}
			return true
		}, 30*time.Second, 20*time.Millisecond, group)
	}
	n, err := elig.Count(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 120, n)
	counts, err := cat.Count(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, counts[catalog.EntityService])
	require.Len(t, kc.WaitCount(t, kc.Topics.DLQ, 1, 10*time.Second), 1, "the undecodable record is dead-lettered once")
	require.EqualValues(t, 122, testutil.ToFloat64(m.RecordsIn.WithLabelValues(resolve.StageName)), "every record counted once")
}

// TestCatalogBatchesCountItsOwnRecords: the catalog group's share of `valid` is small while
// residents are imported, and a batch is pipeline.batch_size records it applies, not that many
// messages: 30 services among 1 200 residents make one or two catalog transactions, not 25.
func TestCatalogBatchesCountItsOwnRecords(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t, catalog.Migrations(), changes.Migrations(), resolve.Migrations(), eligibility.Migrations())
	kc := kafkatest.New(t, 1)
	w := broker.NewWriter(kc.Config)
	t.Cleanup(func() { _ = w.Close() })

	residents := residentRecords(t, 1200)
	var msgs []kafka.Message
	for i, r := range residents {
		msg := message(t, kc.Topics.Valid, "residents", r.EntityType, r.Op, r.ExternalID, r.Data)
		msg.Headers = []kafka.Header{{Key: event.EntityTypeHeader, Value: []byte(schemas.EntityResident)}}
		msgs = append(msgs, msg)
		if i%40 == 39 {
			id := fmt.Sprintf("DSZN-%d", i/40)
			svc := message(t, kc.Topics.Valid, "dszn", schemas.EntityService, event.OpUpsert, id,
				fmt.Appendf(nil, `{"id":%q,"name":"Семейная медиация %d","status":"active","organization":{"id":"ORG-1","name":"ГБУ ТЦСО «Марьино»"}}`, id, i))
			svc.Headers = []kafka.Header{{Key: event.EntityTypeHeader, Value: []byte(schemas.EntityService)}}
			msgs = append(msgs, svc)
		}
	}
	require.NoError(t, w.WriteMessages(context.Background(), msgs...))

	m := metrics.New()
	stage := resolve.New(resolve.Options{
		Pool: db.Pool, Catalog: catalog.NewStore(db.Pool), Outbox: changes.NewOutbox(db.Pool),
		Kafka: kc.Config, Topics: kc.Topics, Producer: w, Metrics: m, Records: resolve.CatalogRecords,
		BatchSize: 50, BatchWait: time.Second,
	})
	runStage(t, stage)
	require.Eventually(t, func() bool {
		offs, err := resolve.Offsets(context.Background(), db.Pool, "socialhub-resolve", kc.Topics.Valid)
		require.NoError(t, err)
		return offs[0] == int64(len(msgs))
	}, 30*time.Second, 20*time.Millisecond)

	h := &dto.Metric{}
	require.NoError(t, m.BatchRecords.WithLabelValues(resolve.StageName).(prometheus.Histogram).Write(h))
	require.EqualValues(t, 30, h.GetHistogram().GetSampleSum(), "every service applied once")
	require.LessOrEqual(t, h.GetHistogram().GetSampleCount(), uint64(2), "transactions of the catalog group")
}
