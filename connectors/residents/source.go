package residents

import (
	"fmt"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
	"socialhub/internal/config"
	"socialhub/internal/pseudonym"
)

// KindName is the name of this kind in the config.
const KindName = "residents"

// Kind returns the kind for the registry.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name: KindName,
		Description: "the residents' registry, from its PostgreSQL table (incremental) or a full CSV/JSONL export; " +
			"national ids become pseudonyms (needs " + pseudonym.EnvKey + "), names and documents are dropped",
		New: New,
	}
}

// New builds a residents source from its config. It refuses to build one without the pseudonym
// key: a source that cannot pseudonymize must not read the registry at all.
func New(cfg config.Source, deps connectors.Deps) (connectors.Source, error) {
	var opts Options
	if err := cfg.DecodeOptions(&opts); err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadOptions, err)
	}
	opts.setDefaults()
	getenv := deps.Env()
	if err := opts.validate(getenv); err != nil {
		return nil, fmt.Errorf("%w: sources[%s].options: %w", connectors.ErrBadOptions, cfg.Name, err)
	}
	p, err := pseudonym.FromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", cfg.Name, err)
	}
	b := &builder{cols: opts.Columns, city: opts.City, pseudo: p}
	switch opts.Mode {
	case ModeTable:
		dsn := opts.DSN
		if opts.DSNEnv != "" {
			dsn = getenv(opts.DSNEnv)
		}
		return &TableSource{name: cfg.Name, opts: opts, dsn: dsn, build: b}, nil
	default:
		return &SnapshotSource{name: cfg.Name, opts: opts, fetcher: fetch.New(opts.Options, getenv), build: b}, nil
	}
}
