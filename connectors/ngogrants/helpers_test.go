package ngogrants_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"socialhub/connectors"
	"socialhub/connectors/ngogrants"
	"socialhub/internal/config"
	"socialhub/internal/demo"
)

func options(t testing.TB, opts map[string]any) config.Source {
	t.Helper()
	var node yaml.Node
	b, err := yaml.Marshal(opts)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &node))
	return config.Source{Name: "grants", Kind: ngogrants.KindName, Options: *node.Content[0]}
}

func source(t testing.TB, opts map[string]any) *ngogrants.Source {
	t.Helper()
	src, err := ngogrants.New(options(t, opts), connectors.Deps{})
	require.NoError(t, err)
	return src.(*ngogrants.Source)
}

func writeFile(t testing.TB, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, content, 0o600))
	return path
}

func readAll(t testing.TB, src connectors.Source, pos connectors.Position) []connectors.Record {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, src.Open(ctx, pos))
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

func demoXLSX(t testing.TB, opts demo.GrantsOptions) ([]byte, demo.GrantsManifest) {
	t.Helper()
	var buf bytes.Buffer
	man, err := demo.WriteGrantsXLSX(&buf, opts)
	require.NoError(t, err)
	return buf.Bytes(), man
}

func demoCSV(t testing.TB, opts demo.GrantsOptions) ([]byte, demo.GrantsManifest) {
	t.Helper()
	var buf bytes.Buffer
	man, err := demo.WriteGrantsCSVWindows1251(&buf, opts)
	require.NoError(t, err)
	return buf.Bytes(), man
}

func byID(recs []connectors.Record) map[string]connectors.Record {
	m := make(map[string]connectors.Record, len(recs))
	for _, r := range recs {
		m[r.ExternalID] = r
	}
	return m
}
