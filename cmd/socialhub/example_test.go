package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/internal/config"
)

// TestExampleConfig keeps socialhub.example.yaml true: it loads, validates, and every source in it
// builds with its kind (given the secrets it names).
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DSZN_TOKEN": "t", "TRUD_TOKEN": "t", "NGO_USER": "u", "NGO_PASSWORD": "p",
		"REGISTRY_DATABASE_URL":   "postgres://registry@127.0.0.1:1/registry",
		"SOCIALHUB_PSEUDONYM_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load("../../socialhub.example.yaml", getenv)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Len(t, cfg.Sources, 5)
	reg := kinds()
	for _, s := range cfg.Sources {
		_, err := reg.New(s, connectors.Deps{Getenv: getenv})
		require.NoError(t, err, "source %s", s.Name)
	}
}
