package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Config is how the hub reaches Kafka.
type Config struct {
	Brokers []string
	// ClientID names the hub in the brokers' logs.
	ClientID string
	// BatchTimeout bounds how long a writer waits to fill a batch; WriteMessages is synchronous, so
	// this is only the linger before a partial batch is sent.
	BatchTimeout time.Duration
	// MaxWait bounds how long a fetch waits for MinBytes.
	MaxWait time.Duration
	// TLS, when set, encrypts every connection to the brokers.
	TLS *tls.Config
	// SASL, when set, authenticates every connection (PLAIN or SCRAM).
	SASL sasl.Mechanism
}

// Dialer returns the dialer every reader and consumer group of the hub uses.
func (c Config) Dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: c.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: c.TLS, SASLMechanism: c.SASL}
}

func (c Config) dialer() *kafka.Dialer { return c.Dialer() }

func (c Config) transport() *kafka.Transport {
	return &kafka.Transport{ClientID: c.ClientID, DialTimeout: 10 * time.Second, TLS: c.TLS, SASL: c.SASL}
}

// NewWriter returns a writer for messages that name their own topic. WriteMessages returns only
// after every broker in the ISR acknowledged every message (RequireAll), which is what lets a
// caller checkpoint or commit after it returns.
func NewWriter(cfg Config) *kafka.Writer {
	bt := cfg.BatchTimeout
	if bt <= 0 {
		bt = 5 * time.Millisecond
	}
	return &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{}, // the Java client's partitioner: same key, same partition
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: bt,
		BatchSize:    1000,
		// A produce batch must stay under the broker's message.max.bytes (1 MiB by default, applied
		// to the whole record batch): a larger one is refused with every record in it.
		BatchBytes:             900 << 10,
		MaxAttempts:            10,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        2 * time.Second,
		AllowAutoTopicCreation: false,
		Transport:              cfg.transport(),
	}
}

// ReaderConfig returns the settings every consumer in the hub shares, for one topic.
func ReaderConfig(cfg Config, topic string) kafka.ReaderConfig {
	mw := cfg.MaxWait
	if mw <= 0 {
		mw = 250 * time.Millisecond
	}
	return kafka.ReaderConfig{
		Brokers:        cfg.Brokers,
		Topic:          topic,
		Dialer:         cfg.dialer(),
		MinBytes:       1,
		MaxBytes:       2 << 20,
		MaxWait:        mw,
		ReadBackoffMin: 20 * time.Millisecond,
		ReadBackoffMax: 500 * time.Millisecond,
		StartOffset:    kafka.FirstOffset,
		// CommitInterval 0: commits are synchronous and explicit, after the work is durable.
		CommitInterval: 0,
	}
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int
	Compacted  bool
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, cfg Config, specs ...TopicSpec) error {
	if len(cfg.Brokers) == 0 {
		return ErrNoBrokers
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 30 * time.Second, Transport: cfg.transport()}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: -1}
		if tc.NumPartitions <= 0 {
			tc.NumPartitions = 1
		}
		if s.Compacted {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		req.Topics = append(req.Topics, tc)
	}
	var resp *kafka.CreateTopicsResponse
	var err error
	// A broker that has just started may not have elected a controller yet: retry briefly.
	for attempt := 0; attempt < 50; attempt++ {
		resp, err = client.CreateTopics(ctx, req)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("error creating topics: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("error creating topics: %w", err)
	}
	for name, terr := range resp.Errors {
		if terr == nil || errors.Is(terr, kafka.TopicAlreadyExists) {
			continue
		}
		return fmt.Errorf("error creating topic %s: %w", name, terr)
	}
	return nil
}

// PartitionCount returns how many partitions a topic has.
func PartitionCount(ctx context.Context, cfg Config, topic string) (int, error) {
	if len(cfg.Brokers) == 0 {
		return 0, ErrNoBrokers
	}
	conn, err := cfg.dialer().DialContext(ctx, "tcp", cfg.Brokers[0])
	if err != nil {
		return 0, fmt.Errorf("error connecting to Kafka: %w", err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		return 0, fmt.Errorf("error reading partitions of %s: %w", topic, err)
	}
	return len(parts), nil
}

// EndOffsets returns, per partition, the offset the next record written will get (the high-water
// mark). Tests and the lag metric use it.
func EndOffsets(ctx context.Context, cfg Config, topic string) (map[int]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: cfg.transport()}
	n, err := PartitionCount(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, n)
	for i := range reqs {
		reqs[i] = kafka.LastOffsetOf(i)
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("error listing offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, n)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("error listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}
