package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// Config is everything the hub reads at start.
type Config struct {
	// DataDir holds the embedded broker's log, the embedded PostgreSQL cluster and demo files.
	DataDir string `yaml:"data_dir"`
	// DatabaseURL, when set, is used instead of the embedded PostgreSQL cluster. Env: DATABASE_URL.
	DatabaseURL string   `yaml:"database_url"`
	HTTP        HTTP     `yaml:"http"`
	Kafka       Kafka    `yaml:"kafka"`
	Pipeline    Pipeline `yaml:"pipeline"`
	Log         Log      `yaml:"log"`
	// Demo loads the demo sources on first start.
	Demo    bool     `yaml:"demo"`
	Sources []Source `yaml:"sources"`
}

// HTTP configures the API server.
type HTTP struct {
	// Addr is the listen address. Env: SOCIALHUB_HTTP_ADDR.
	Addr string `yaml:"addr"`
	// AdminToken is the bearer token of operator requests (starting a source run); without one
	// they are accepted from this machine only. Env only: SOCIALHUB_ADMIN_TOKEN.
	AdminToken string `yaml:"-"`
}

// Kafka configures the broker connection.
type Kafka struct {
	// Brokers are external broker addresses; empty starts the embedded broker. Env:
	// SOCIALHUB_KAFKA_BROKERS (comma-separated).
	Brokers []string `yaml:"brokers"`
	// EmbeddedPort is the embedded broker's loopback port; 0 picks a free one.
	EmbeddedPort int `yaml:"embedded_port"`
	// TopicPrefix prefixes every topic name.
	TopicPrefix string `yaml:"topic_prefix"`
	// Partitions is the partition count of topics the hub creates.
	Partitions int `yaml:"partitions"`
	// MaxMessageBytes is the largest record the hub writes (the broker's message.max.bytes).
	MaxMessageBytes int `yaml:"max_message_bytes"`
}

// Pipeline tunes the stages.
type Pipeline struct {
	// BatchSize is how many records a stage handles per transaction / produce call.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long a stage waits to fill a batch before handling what it has.
	BatchWait time.Duration `yaml:"batch_wait"`
	// RelayInterval is how often the outbox relay polls when idle.
	RelayInterval time.Duration `yaml:"relay_interval"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Source is one configured source. Options belong to the source's kind, which decodes and checks
// them itself.
type Source struct {
	Name     string    `yaml:"name"`
	Kind     string    `yaml:"kind"`
	Schedule string    `yaml:"schedule"`
	Disabled bool      `yaml:"disabled"`
	Options  yaml.Node `yaml:"options"`
}

// DecodeOptions decodes the source's options into v, refusing unknown fields so a typo in a
// mapping is an error at start, not a silently empty column.
func (s Source) DecodeOptions(v any) error {
	if s.Options.Kind == 0 {
		return nil
	}
	b, err := yaml.Marshal(&s.Options)
	if err != nil {
		return fmt.Errorf("error reading options of source %q: %w", s.Name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("sources[%s].options: %w", s.Name, err)
	}
	return nil
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		DataDir: "data",
		HTTP:    HTTP{Addr: "127.0.0.1:8080"},
		Kafka: Kafka{
			TopicPrefix:     "socialhub.",
			Partitions:      4,
			MaxMessageBytes: 1 << 20,
		},
		Pipeline: Pipeline{BatchSize: 500, BatchWait: 50 * time.Millisecond, RelayInterval: 100 * time.Millisecond},
		Log:      Log{Level: "info", Format: "text"},
	}
}

// Load reads the YAML file at path (if path is not empty) over the defaults, then the environment.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("error reading config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, errEOF) {
			return cfg, fmt.Errorf("error parsing config file %s: %w", path, err)
		}
	}
	cfg.applyEnv(getenv)
	return cfg, nil
}

var errEOF = eofError()

func eofError() error {
	var v struct{}
	return yaml.NewDecoder(strings.NewReader("")).Decode(&v)
}

func (c *Config) applyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	if v := getenv("DATABASE_URL"); v != "" {
		c.DatabaseURL = v
	}
	if v := getenv("SOCIALHUB_HTTP_ADDR"); v != "" {
		c.HTTP.Addr = v
	}
	if v := getenv("SOCIALHUB_KAFKA_BROKERS"); v != "" {
		c.Kafka.Brokers = nil
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.Kafka.Brokers = append(c.Kafka.Brokers, b)
			}
		}
	}
	if v := getenv("SOCIALHUB_ADMIN_TOKEN"); v != "" {
		c.HTTP.AdminToken = v
	}
	if v := getenv("SOCIALHUB_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if v := getenv("SOCIALHUB_LOG_LEVEL"); v != "" {
		c.Log.Level = v
	}
}

// FieldError names the configuration field that is wrong.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks the configuration and returns every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" && (c.DatabaseURL == "" || len(c.Kafka.Brokers) == 0) {
		bad("data_dir", "is required unless both database_url and kafka.brokers are set")
	}
	if c.HTTP.Addr == "" {
		bad("http.addr", "is required")
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > 1000 {
		bad("kafka.partitions", "must be between 1 and 1000, got %d", c.Kafka.Partitions)
	}
	if c.Kafka.MaxMessageBytes < 1024 {
		bad("kafka.max_message_bytes", "must be at least 1024, got %d", c.Kafka.MaxMessageBytes)
	}
	if c.Kafka.EmbeddedPort < 0 || c.Kafka.EmbeddedPort > 65535 {
		bad("kafka.embedded_port", "must be a TCP port, got %d", c.Kafka.EmbeddedPort)
	}
	if c.Pipeline.BatchSize < 1 || c.Pipeline.BatchSize > 100000 {
		bad("pipeline.batch_size", "must be between 1 and 100000, got %d", c.Pipeline.BatchSize)
	}
	if c.Pipeline.BatchWait < 0 {
		bad("pipeline.batch_wait", "must not be negative")
	}
	if c.Pipeline.RelayInterval <= 0 {
		bad("pipeline.relay_interval", "must be positive")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		f := fmt.Sprintf("sources[%d]", i)
		if !sourceName.MatchString(s.Name) {
			bad(f+".name", "must be lower-case letters, digits, '.', '_' or '-' (at most 63), got %q", s.Name)
		}
		if seen[s.Name] {
			bad(f+".name", "duplicate source name %q", s.Name)
		}
		seen[s.Name] = true
		if s.Kind == "" {
			bad(f+".kind", "is required")
		}
		if s.Schedule != "" {
			if _, err := cron.ParseStandard(s.Schedule); err != nil {
				bad(f+".schedule", "is not a cron schedule: %v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// Resolve makes relative paths absolute against the working directory.
func (c *Config) Resolve() error {
	if c.DataDir == "" {
		return nil
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("error resolving data_dir: %w", err)
	}
	c.DataDir = abs
	return nil
}
