package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"socialhub/internal/config"
)

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	require.NoError(t, config.Default().Validate())
}

func TestLoadFileAndEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hub.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
data_dir: /var/lib/socialhub
kafka:
  partitions: 8
pipeline:
  batch_wait: 20ms
sources:
  - name: dszn-points
    kind: csv
    schedule: "0 * * * *"
    options:
      path: /srv/dszn.csv
      encoding: windows-1251
`), 0o600))
	env := map[string]string{"DATABASE_URL": "postgres://db/socialhub", "SOCIALHUB_KAFKA_BROKERS": "k1:9092, k2:9092"}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Equal(t, 8, cfg.Kafka.Partitions)
	require.Equal(t, 20*time.Millisecond, cfg.Pipeline.BatchWait)
	require.Equal(t, "postgres://db/socialhub", cfg.DatabaseURL)
	require.Equal(t, []string{"k1:9092", "k2:9092"}, cfg.Kafka.Brokers)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTP.Addr, "defaults stay where the file is silent")
	var opts struct {
		Path     string `yaml:"path"`
		Encoding string `yaml:"encoding"`
	}
	require.NoError(t, cfg.Sources[0].DecodeOptions(&opts))
	require.Equal(t, "/srv/dszn.csv", opts.Path)
	var strict struct {
		Path string `yaml:"path"`
	}
	require.ErrorContains(t, cfg.Sources[0].DecodeOptions(&strict), "encoding", "unknown option fields are refused")
}

func TestUnknownFieldIsRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hub.yaml")
	require.NoError(t, os.WriteFile(path, []byte("kafka:\n  partitons: 3\n"), 0o600))
	_, err := config.Load(path, nil)
	require.ErrorContains(t, err, "partitons")
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Kafka.Partitions = 0
	cfg.Log.Level = "loud"
	cfg.Sources = []config.Source{{Name: "A B", Kind: "csv", Schedule: "every day"}, {Name: "x", Kind: ""}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, field := range []string{"kafka.partitions", "log.level", "sources[0].name", "sources[0].schedule", "sources[1].kind"} {
		require.ErrorContains(t, err, field)
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "empty.yaml")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	cfg, err := config.Load(path, nil)
	require.NoError(t, err)
	require.Equal(t, config.Default(), cfg)
}

func TestExampleConfigIsValid(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("../../socialhub.example.yaml", nil)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.NotEmpty(t, cfg.Sources)
	for _, s := range cfg.Sources {
		// The example documents every kind; none may run on a machine that copies it as it is.
		require.True(t, s.Disabled, "example source %s must be disabled", s.Name)
	}
}

func TestNewSource(t *testing.T) {
	t.Parallel()
	src, err := config.NewSource("dszn", "csv", "@every 1h", map[string]any{"path": "/srv/points.csv", "header": false})
	require.NoError(t, err)
	var opts struct {
		Path   string `yaml:"path"`
		Header bool   `yaml:"header"`
	}
	require.NoError(t, src.DecodeOptions(&opts))
	require.Equal(t, "/srv/points.csv", opts.Path)
	require.False(t, opts.Header)
	require.Equal(t, "@every 1h", src.Schedule)
	// Unknown options are still refused when the kind decodes them.
	var narrow struct {
		Path string `yaml:"path"`
	}
	require.ErrorContains(t, src.DecodeOptions(&narrow), "header")
}

func TestPoolMaxConnsFollowsTheRoles(t *testing.T) {
	c := config.Default()
	c.Kafka.Partitions = 3
	c.Sources = make([]config.Source, 4)
	if got := c.PoolMaxConns(); got != 8+2*3+4 {
		t.Errorf("all roles: %d connections, want 18 (8 + two resolve groups × 3 partitions + 4 sources)", got)
	}
	c.Roles = []string{config.RoleAPI}
	if got := c.PoolMaxConns(); got != 8 {
		t.Errorf("api only: %d connections, want 8", got)
	}
	c.Roles = []string{config.RoleResolve}
	c.Kafka.Partitions = 1000
	if got := c.PoolMaxConns(); got != 64 {
		t.Errorf("resolve on 1000 partitions: %d connections, want the cap of 64", got)
	}
	c.Database.MaxConns = 5
	if got := c.PoolMaxConns(); got != 5 {
		t.Errorf("database.max_conns 5: %d connections, want 5", got)
	}
}
