package broker

import (
	"fmt"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedOptions configures the in-process broker.
type EmbeddedOptions struct {
	// DataDir holds the broker's log segments; acknowledged records survive a crash of the process
	// because every produce is fsynced before it is acknowledged. Empty means in memory only.
	DataDir string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// Brokers is the number of brokers in the in-process cluster (default 1).
	Brokers int
	// MaxMessageBytes is the broker's message.max.bytes (default 1 MiB, as Kafka's).
	MaxMessageBytes int
	// DefaultPartitions is used for topics created without a partition count.
	DefaultPartitions int
}

// Embedded is a running in-process Kafka-protocol cluster.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts the in-process broker on loopback.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	n := opts.Brokers
	if n <= 0 {
		n = 1
	}
	kopts := []kfake.Opt{kfake.NumBrokers(n)}
	if opts.Port != 0 {
		ports := make([]int, n)
		for i := range ports {
			ports[i] = opts.Port + i
		}
		kopts = append(kopts, kfake.Ports(ports...))
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("error creating broker data directory: %w", err)
		}
		// SyncWrites: a record the broker acknowledged is on disk, which invariant 1 (checkpoint
		// only after Kafka acknowledged) depends on when the whole process is killed.
		kopts = append(kopts, kfake.DataDir(opts.DataDir), kfake.SyncWrites())
	}
	cfgs := map[string]string{}
	if opts.MaxMessageBytes > 0 {
		cfgs["message.max.bytes"] = strconv.Itoa(opts.MaxMessageBytes)
	}
	if len(cfgs) > 0 {
		kopts = append(kopts, kfake.BrokerConfigs(cfgs))
	}
	if opts.DefaultPartitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(opts.DefaultPartitions))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("error starting embedded Kafka broker: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the brokers' host:port addresses.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Cluster exposes the kfake cluster for tests that inject faults.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker, flushing its data directory.
func (e *Embedded) Close() { e.cluster.Close() }
