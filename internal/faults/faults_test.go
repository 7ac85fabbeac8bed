package faults_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/csv"
	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/changes"
	"socialhub/internal/config"
	"socialhub/internal/demo"
	"socialhub/internal/event"
	"socialhub/internal/faults"
	"socialhub/internal/hub"
	"socialhub/internal/kafkatest"
	"socialhub/internal/pgtest"
	"socialhub/internal/resolve"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const source = "faults-dszn"

// rows is the size of a scenario's input: short in make test, large in make faults.
func rows() int {
	if n, err := strconv.Atoi(os.Getenv("SOCIALHUB_FAULTS_ROWS")); err == nil && n > 0 {
		return n
	}
	return 400
}

// env is one scenario's hub: its own broker (on a data directory, so it can be restarted), its
// own database and a department file.
type env struct {
	t      *testing.T
	dir    string
	port   int
	emb    *broker.Embedded
	kc     *kafkatest.Cluster
	db     *pgtest.DB
	file   string
	man    faults.Manifest
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
	// restarts counts how often the hub had to be started again after it stopped on a fault.
	restarts int
}

func newEnv(t *testing.T, n int) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.port = ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	e.startBroker()
	e.kc = kafkatest.Attach(t, e.emb, 3)
	t.Cleanup(func() { e.emb.Close() })
	e.db = pgtest.NewDB(t, hub.Migrations()...)
	e.file = filepath.Join(e.dir, "department.csv")
	f, err := os.Create(e.file)
	require.NoError(t, err)
	man, err := demo.WriteDepartmentCSV(f, demo.Options{Seed: 7, Rows: n, Broken: -1})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	e.man = faults.Manifest{Good: map[string][]string{source: man.Valid}}
	return e
}

func (e *env) startBroker() {
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{DataDir: filepath.Join(e.dir, "kafka"), Port: e.port, DefaultPartitions: 3})
	require.NoError(e.t, err)
	e.emb = emb
}

// startHub runs the hub; if it stops on its own (a fault it could not ride out), it is started
// again, as its supervisor would, and the restart is counted.
func (e *env) startHub() {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(e.dir, "hub")
	cfg.DatabaseURL = e.db.URL
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Kafka.Brokers = e.kc.Config.Brokers
	cfg.Kafka.TopicPrefix = event.DefaultPrefix
	cfg.Kafka.Partitions = 3
	cfg.Pipeline.BatchSize = 50
	src, err := hub.CSVSource(source, e.file, "@every 1h")
	require.NoError(e.t, err)
	cfg.Sources = []config.Source{src}
	require.NoError(e.t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() {
		for {
			err := hub.Run(ctx, cfg, hub.Options{
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: connectors.NewRegistry(csv.Kind()), SingleProcess: true,
			})
			if ctx.Err() != nil {
				e.done <- err
				return
			}
			e.mu.Lock()
			e.restarts++
			e.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	e.t.Cleanup(e.stopHub)
}

func (e *env) stopHub() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		e.t.Error("hub did not stop within 30s")
	}
	e.cancel = nil
}

// applied is how many records the resolve stage has stored its position past.
func (e *env) applied() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := resolve.Offsets(ctx, e.db.Pool, "socialhub-resolve", e.kc.Topics.Valid)
	if err != nil {
		return 0
	}
	var n int64
	for _, o := range offs {
		n += o
	}
	return n
}

// waitApplied waits until at least n records were applied: faults strike mid-ingest.
func (e *env) waitApplied(n int64) {
	deadline := time.Now().Add(2 * time.Minute)
	for e.applied() < n {
		require.True(e.t, time.Now().Before(deadline), "only %d records applied, want %d", e.applied(), n)
		time.Sleep(10 * time.Millisecond)
	}
}

// settle waits until every good record is stored, resolve caught up with valid and the outbox is
// drained, then runs the checker.
func (e *env) settle(ref map[string]catalog.EntityDigest) faults.Result {
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	want := 0
	for _, ids := range e.man.Good {
		want += len(ids)
	}
	total := func(topic string) int64 {
		ends, _ := broker.EndOffsets(ctx, e.kc.Config, topic)
		var n int64
		for _, x := range ends {
			n += x
		}
		return n
	}
	quiet := 0
	for {
		ids, _ := catalog.NewStore(e.db.Pool).SourceRecordIDs(ctx, source)
		backlog, _ := changes.NewOutbox(e.db.Pool).Backlog(ctx)
		end := total(e.kc.Topics.Valid)
		// validate has passed on everything on raw (to valid or dlq), and resolve applied all of valid;
		// twice in a row, so a batch in flight between the two topics is not missed.
		caught := total(e.kc.Topics.Valid)+total(e.kc.Topics.DLQ) >= total(e.kc.Topics.Raw)
		if len(ids) >= want && backlog == 0 && end > 0 && caught && e.applied() == end {
			if quiet++; quiet >= 3 {
				break
			}
		} else {
			quiet = 0
		}
		require.True(e.t, time.Now().Before(deadline), "not settled: %d of %d stored, applied %d of %d, outbox %d", len(ids), want, e.applied(), end, backlog)
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the relay's last publication reaches changes
	res, err := faults.Check(ctx, faults.Env{Pool: e.db.Pool, Kafka: e.kc.Config, Topics: e.kc.Topics, Reference: ref}, e.man)
	require.NoError(e.t, err)
	e.t.Logf("landed %d, poison on dlq %d, entities %d, changes %d, hub restarts %d", res.Landed, res.PoisonInDLQ, res.Entities, res.Changes, e.restarts)
	require.NoError(e.t, res.Err())
	return res
}

func digest(t *testing.T, e *env) map[string]catalog.EntityDigest {
	d, err := catalog.NewStore(e.db.Pool).Digest(context.Background())
	require.NoError(t, err)
	return d
}

// reference is the catalog digest of an uninterrupted run of the same file.
var (
	refOnce sync.Once
	refDig  map[string]catalog.EntityDigest
)

func reference(t *testing.T) map[string]catalog.EntityDigest {
	refOnce.Do(func() {
		e := newEnv(t, rows())
		e.startHub()
		e.settle(nil)
		refDig = digest(t, e)
		e.stopHub()
	})
	require.NotEmpty(t, refDig)
	return refDig
}

// minFlow is how many records must have been applied between faults for a scenario to count.
func minFlow() int64 { return int64(rows() / 10) }

func TestBrokerRestartedOnItsDataDirectory(t *testing.T) {
	t.Parallel()
	ref := reference(t)
	e := newEnv(t, rows())
	e.startHub()
	e.waitApplied(minFlow())
	before := e.applied()
	e.emb.Close()
	time.Sleep(500 * time.Millisecond)
	e.startBroker()
	e.waitApplied(before + minFlow())
	e.settle(ref)
}

func TestDuplicateDeliveryAndReplayFromTheBeginning(t *testing.T) {
	t.Parallel()
	ref := reference(t)
	e := newEnv(t, rows())
	e.startHub()
	e.settle(ref)
	// The same records again, on raw: a connector's retry after a lost acknowledgement.
	raw := e.kc.ReadAll(t, e.kc.Topics.Raw)
	require.GreaterOrEqual(t, int64(len(raw)), minFlow())
	w := broker.NewWriter(e.kc.Config)
	defer w.Close()
	again := make([]kafka.Message, len(raw))
	for i, m := range raw {
		again[i] = kafka.Message{Topic: e.kc.Topics.Raw, Key: m.Key, Value: m.Value, Headers: m.Headers}
	}
	require.NoError(t, w.WriteMessages(context.Background(), again...))
	e.settle(ref)
	// The resolve group reset to the beginning: a replay of valid changes nothing.
	e.stopHub()
	// resolve keeps its group's positions in PostgreSQL (invariant 2): resetting the group is
	// rewinding them there, as an operator would.
	_, err := e.db.Pool.Exec(context.Background(), `UPDATE resolve_offsets SET next_offset = 0`)
	require.NoError(t, err)
	e.startHub()
	e.settle(ref)
}

func TestPoisonRecordsGoToDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t, rows())
	// A row over the broker's message size limit, in the file itself.
	f, err := os.OpenFile(e.file, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	huge := "POISON-HUGE;ORG-X;Огромное учреждение;7707083893;1027700132195;Услуга;" + strings.Repeat("очень длинное описание ", 80_000) + ";cooling-room;Точка;ул. Тверская, 1;Тверской;ЦАО;125009;55.76;37.61;+7 495 000-00-00;a@b.ru;;пн-пт 9-18\n"
	_, err = f.WriteString(huge)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	e.man.Poison = append(e.man.Poison, source+"/POISON-HUGE")

	// Malformed records written straight to raw, between good ones.
	w := broker.NewWriter(e.kc.Config)
	defer w.Close()
	deep := strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000)
	poison := map[string][]byte{
		"malformed":   []byte(`{"specversion":"1.0","id":"x","data":{`),
		"invalid-utf": append([]byte(`{"specversion":"1.0","id":"y","source":"socialhub/faults-push","type":"socialhub.raw.service.upsert","subject":"`), 0xff, 0xfe, '"', '}'),
		"deep":        []byte(`{"specversion":"1.0","id":"z","source":"socialhub/faults-push","type":"socialhub.raw.service.upsert","subject":"deep","data":` + deep + `}`),
		"not-json":    []byte("\x00\x01binary"),
	}
	var msgs []kafka.Message
	for id, v := range poison {
		key := "faults-push/" + id
		msgs = append(msgs, kafka.Message{Topic: e.kc.Topics.Raw, Key: []byte(key), Value: v})
		e.man.Poison = append(e.man.Poison, key)
	}
	e.startHub()
	e.waitApplied(minFlow())
	require.NoError(t, w.WriteMessages(context.Background(), msgs...))
	e.settle(nil)
}

func TestConsumersJoinAndLeaveDuringIngest(t *testing.T) {
	t.Parallel()
	ref := reference(t)
	e := newEnv(t, rows())
	e.startHub()
	e.waitApplied(minFlow())
	// A second hub process's consumers join the groups and leave again: two rebalances.
	second := &env{t: t, dir: t.TempDir(), kc: e.kc, db: e.db, file: e.file, emb: e.emb}
	second.startHub()
	before := e.applied()
	e.waitApplied(before + minFlow())
	second.stopHub()
	e.settle(ref)
	require.Zero(t, second.restarts)
}
