package hub

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"socialhub/internal/config"
	"socialhub/internal/demo"
)

// DemoSourceName names the demo department source.
const DemoSourceName = "demo-dszn-points"

// DemoSources returns the configs of the demo sources that read what ensureDemo writes in dataDir.
func DemoSources(dataDir string) []config.Source {
	s, err := CSVSource(DemoSourceName, filepath.Join(dataDir, "demo", "department.csv"), "*/15 * * * *")
	if err != nil {
		return nil // the options are built from a fixed map: this does not fail
	}
	return []config.Source{s}
}

// ensureDemo writes the demo department file on first start (a seed gives the same file every
// time) and returns the csv source that reads it.
func ensureDemo(dataDir string, log *slog.Logger) (config.Source, error) {
	path := filepath.Join(dataDir, "demo", "department.csv")
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return config.Source{}, fmt.Errorf("error creating demo directory: %w", err)
		}
		tmp := path + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return config.Source{}, fmt.Errorf("error creating demo file: %w", err)
		}
		man, err := demo.WriteDepartmentCSV(f, demo.Options{})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return config.Source{}, fmt.Errorf("error writing demo file: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return config.Source{}, fmt.Errorf("error writing demo file: %w", err)
		}
		log.Info("demo data written", "path", path, "valid_rows", len(man.Valid), "broken_rows", len(man.Broken))
	}
	return CSVSource(DemoSourceName, path, "*/15 * * * *")
}

// CSVSource builds the config of a csv source reading path with the default column mapping.
func CSVSource(name, path, schedule string) (config.Source, error) {
	var node yaml.Node
	b, err := yaml.Marshal(map[string]any{"path": path})
	if err != nil {
		return config.Source{}, err
	}
	if err := yaml.Unmarshal(b, &node); err != nil {
		return config.Source{}, err
	}
	// Unmarshal gives a document node; options are its mapping.
	opts := node
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		opts = *node.Content[0]
	}
	return config.Source{Name: name, Kind: "csv", Schedule: schedule, Options: opts}, nil
}
