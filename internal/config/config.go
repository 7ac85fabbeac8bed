package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	Database    Database `yaml:"database"`
	HTTP        HTTP     `yaml:"http"`
	Kafka       Kafka    `yaml:"kafka"`
	Pipeline    Pipeline `yaml:"pipeline"`
	Log         Log      `yaml:"log"`
	// Roles are the parts this process runs (default all); `socialhub serve --roles` sets them.
	Roles       []string    `yaml:"roles"`
	Connectors  Connectors  `yaml:"connectors"`
	Changes     Changes     `yaml:"changes"`
	Webhooks    Webhooks    `yaml:"webhooks"`
	Attestation Attestation `yaml:"attestation"`
	Eligibility Eligibility `yaml:"eligibility"`
	Cases       Cases       `yaml:"cases"`
	Web         Web         `yaml:"web"`
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
	// TLS and SASL secure the connections to external brokers.
	TLS  KafkaTLS  `yaml:"tls"`
	SASL KafkaSASL `yaml:"sasl"`
}

// KafkaTLS configures TLS to the brokers.
type KafkaTLS struct {
	Enabled  bool   `yaml:"enabled"`
	CAFile   string `yaml:"ca_file"`   // PEM; empty: the system's roots
	CertFile string `yaml:"cert_file"` // client certificate for mutual TLS
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the host name checked in the brokers' certificates.
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // test clusters only
}

// KafkaSASL configures SASL authentication to the brokers.
type KafkaSASL struct {
	// Mechanism is "", plain, scram-sha-256 or scram-sha-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// PasswordEnv names the variable holding the password (default SOCIALHUB_KAFKA_PASSWORD).
	PasswordEnv string `yaml:"password_env"`
	// Password is read from PasswordEnv, never from the file.
	Password string `yaml:"-"`
}

// Database tunes the PostgreSQL pool. TLS is set in the URL (sslmode=verify-full, sslrootcert=...).
type Database struct {
	MaxConns        int32         `yaml:"max_conns"` // 0: what the roles need (Config.PoolMaxConns)
	MinConns        int32         `yaml:"min_conns"`
	MaxConnLifetime time.Duration `yaml:"max_conn_lifetime"`
	MaxConnIdleTime time.Duration `yaml:"max_conn_idle_time"`
}

// Pipeline tunes the stages.
type Pipeline struct {
	// BatchSize is how many records a stage handles per transaction / produce call.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long a stage waits to fill a batch before handling what it has.
	BatchWait time.Duration `yaml:"batch_wait"`
	// RelayInterval is how often the outbox relay polls when idle.
	RelayInterval time.Duration `yaml:"relay_interval"`
	// SessionTimeout is the consumer groups' session timeout: how soon the partitions of a
	// process that died go to the others.
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// Changes configures the change feed (polling and Server-Sent Events).
type Changes struct {
	// Retention is how long published changes stay readable; older resume points answer 410.
	Retention     time.Duration `yaml:"retention"`
	PruneInterval time.Duration `yaml:"prune_interval"`
	// SSEHeartbeat is how often an idle stream gets a comment line (keeps proxies from closing it).
	SSEHeartbeat time.Duration `yaml:"sse_heartbeat"`
}

// Webhooks configures deliveries to subscribers.
type Webhooks struct {
	Timeout     time.Duration `yaml:"timeout"`     // one delivery attempt
	Concurrency int           `yaml:"concurrency"` // deliveries in flight per process
	// RetryBase and RetryMax shape the exponential back-off between attempts.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// PauseAfter pauses a subscription whose deliveries kept failing this long.
	PauseAfter time.Duration `yaml:"pause_after"`
	// RotationGrace is how long the old secret still signs after a rotation.
	RotationGrace time.Duration `yaml:"rotation_grace"`
}

// Attestation configures the signed answers of lookups.
type Attestation struct {
	// Issuer is the iss of attestations: the hub's public URL or name.
	Issuer string `yaml:"issuer"`
	// TTL is how long an attestation stays valid (and its key stays published after rotation).
	TTL time.Duration `yaml:"ttl"`
	// RotateEvery is how often the signing key is replaced.
	RotateEvery time.Duration `yaml:"rotate_every"`
}

// Eligibility configures the eligibility rules.
type Eligibility struct {
	// RulesFile holds rules (JSON or YAML) that replace or add to the embedded ones, by id.
	RulesFile string `yaml:"rules_file"`
}

// Web configures the navigator's map.
type Web struct {
	// TileURL is the map tiles' URL template with {z}, {x}, {y} (and optionally {s}); empty:
	// OpenStreetMap's tiles; "off": no tiles (markers, list and details still work).
	TileURL         string `yaml:"tile_url"`
	TileAttribution string `yaml:"tile_attribution"`
}

// Cases configures applications and case status.
type Cases struct {
	// RulesFile holds routing rules (service category × district → organization), services
	// excluded from channels, deadlines per stage, and the department clients of each
	// organization, over the embedded schemas/case_rules.json.
	RulesFile string `yaml:"rules_file"`
}

// Connectors configures the connectors role.
type Connectors struct {
	// LeaseTTL is how long the connectors' lease lasts unrenewed: how soon another process with
	// the connectors role takes over from one that died (default 15s).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// Roles a process can run.
const (
	RoleConnectors = "connectors"
	RoleValidate   = "validate"
	RoleResolve    = "resolve"
	RoleRelay      = "relay"
	RoleAPI        = "api"
	RoleWebhooks   = "webhooks"
)

// AllRoles lists every role, in the order they are documented.
var AllRoles = []string{RoleConnectors, RoleValidate, RoleResolve, RoleRelay, RoleAPI, RoleWebhooks}

// RoleSet returns the roles to run; no roles configured means all of them.
func (c Config) RoleSet() map[string]bool {
	out := map[string]bool{}
	for _, r := range c.RoleNames() {
		out[r] = true
	}
	return out
}

// RoleNames returns the roles to run, all when none are configured.
func (c Config) RoleNames() []string {
	if len(c.Roles) == 0 {
		return AllRoles
	}
	return c.Roles
}

// PoolMaxConns is the size of the process's PostgreSQL pool: database.max_conns when set, else
// what its roles hold at once. Each of the two resolve consumer groups keeps a transaction open
// per partition it reads, the connectors role checkpoints every source it runs, and the API,
// the relay, the leases and the background jobs want a few more. pgx's own default, max(4,
// cores), is far below that on a small machine: the consumers then queue for connections and
// the hub stalls with the CPU idle (at 4 connections `socialhub bench` ran a third slower).
func (c Config) PoolMaxConns() int32 {
	if c.Database.MaxConns > 0 {
		return c.Database.MaxConns
	}
	roles := c.RoleSet()
	n := 8 // the API, the relay and its lease, the connectors' lease, background jobs
	if roles[RoleResolve] {
		n += 2 * c.Kafka.Partitions
	}
	if roles[RoleConnectors] {
		n += len(c.Sources)
	}
	return int32(min(n, 64))
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

// NewSource builds a source whose options are the YAML encoding of options (a map or a struct
// with yaml tags), as if they had been written in the config file.
func NewSource(name, kind, schedule string, options any) (Source, error) {
	s := Source{Name: name, Kind: kind, Schedule: schedule}
	if options == nil {
		return s, nil
	}
	if err := s.Options.Encode(options); err != nil {
		return s, fmt.Errorf("error encoding options of source %q: %w", name, err)
	}
	return s, nil
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
		Connectors: Connectors{LeaseTTL: 15 * time.Second},
		Changes:    Changes{Retention: 30 * 24 * time.Hour, PruneInterval: time.Hour, SSEHeartbeat: 15 * time.Second},
		Webhooks: Webhooks{Timeout: 10 * time.Second, Concurrency: 16, RetryBase: 5 * time.Second, RetryMax: 2 * time.Hour,
			PauseAfter: 24 * time.Hour, RotationGrace: 24 * time.Hour},
		Attestation: Attestation{Issuer: "socialhub", TTL: 90 * 24 * time.Hour, RotateEvery: 30 * 24 * time.Hour},
		Pipeline:    Pipeline{BatchSize: 1000, BatchWait: 50 * time.Millisecond, RelayInterval: 100 * time.Millisecond, SessionTimeout: 10 * time.Second},
		Log:         Log{Level: "info", Format: "text"},
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
	env := c.Kafka.SASL.PasswordEnv
	if env == "" {
		env = "SOCIALHUB_KAFKA_PASSWORD"
	}
	c.Kafka.SASL.Password = getenv(env)
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
	switch strings.ToLower(c.Kafka.SASL.Mechanism) {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.Kafka.SASL.Username == "" {
			bad("kafka.sasl.username", "is required with kafka.sasl.mechanism")
		}
		if c.Kafka.SASL.Password == "" {
			bad("kafka.sasl.password_env", "the password variable is not set")
		}
	default:
		bad("kafka.sasl.mechanism", "must be plain, scram-sha-256 or scram-sha-512, got %q", c.Kafka.SASL.Mechanism)
	}
	if (c.Kafka.TLS.CertFile == "") != (c.Kafka.TLS.KeyFile == "") {
		bad("kafka.tls.cert_file", "and kafka.tls.key_file go together")
	}
	if c.Database.MaxConns < 0 || c.Database.MinConns < 0 || (c.Database.MaxConns > 0 && c.Database.MinConns > c.Database.MaxConns) {
		bad("database.min_conns", "must be between 0 and database.max_conns")
	}
	if c.Pipeline.BatchSize < 1 || c.Pipeline.BatchSize > 100000 {
		bad("pipeline.batch_size", "must be between 1 and 100000, got %d", c.Pipeline.BatchSize)
	}
	if c.Pipeline.BatchWait < 0 {
		bad("pipeline.batch_wait", "must not be negative")
	}
	if c.Pipeline.SessionTimeout < time.Second {
		bad("pipeline.session_timeout", "must be at least 1s, got %s", c.Pipeline.SessionTimeout)
	}
	if c.Pipeline.RelayInterval <= 0 {
		bad("pipeline.relay_interval", "must be positive")
	}
	for i, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			bad(fmt.Sprintf("roles[%d]", i), "unknown role %q (roles: %s)", r, strings.Join(AllRoles, ", "))
		}
	}
	if c.Changes.Retention < time.Hour {
		bad("changes.retention", "must be at least 1h, got %s", c.Changes.Retention)
	}
	if c.Changes.SSEHeartbeat <= 0 || c.Changes.PruneInterval <= 0 {
		bad("changes.sse_heartbeat", "and changes.prune_interval must be positive")
	}
	if c.Webhooks.Timeout <= 0 || c.Webhooks.Concurrency < 1 || c.Webhooks.RetryBase <= 0 || c.Webhooks.RetryMax < c.Webhooks.RetryBase {
		bad("webhooks", "timeout, concurrency and retry_base must be positive, retry_max at least retry_base")
	}
	if c.Attestation.TTL < time.Minute {
		bad("attestation.ttl", "must be at least 1m, got %s", c.Attestation.TTL)
	}
	if c.Attestation.RotateEvery < time.Hour {
		bad("attestation.rotate_every", "must be at least 1h, got %s", c.Attestation.RotateEvery)
	}
	if c.Connectors.LeaseTTL < time.Second {
		bad("connectors.lease_ttl", "must be at least 1s, got %s", c.Connectors.LeaseTTL)
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
