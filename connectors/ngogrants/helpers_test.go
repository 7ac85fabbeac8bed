package ngogrants_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/connectors"
	"socialhub/connectors/ngogrants"
	"socialhub/internal/config"
	"socialhub/internal/demo"
)

func options(t testing.TB, opts map[string]any) config.Source {
	t.Helper()
	cfg, err := config.NewSource("grants", ngogrants.KindName, "", opts)
	require.NoError(t, err)
	return cfg
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
