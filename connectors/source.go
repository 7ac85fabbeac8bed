package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"socialhub/internal/config"
	"socialhub/internal/event"
)

// Position is a source's opaque cursor: whatever lets it resume after the last record the hub made
// durable. The runner stores it in PostgreSQL and hands it back to Open.
type Position []byte

// Record is one record read from a source.
type Record struct {
	// ExternalID is the record's id at the source; with the source name it is the Kafka key.
	ExternalID string
	// EntityType names the schema the data claims (schemas.EntityService, ...).
	EntityType string
	// Op is event.OpUpsert or event.OpDelete.
	Op string
	// Data is the record document (nil for deletes).
	Data json.RawMessage
	// ContentHash, when the source sets it, is event.ContentHash(Data): a source that writes its
	// documents itself can write them in canonical form and hash the bytes, sparing the runner
	// decoding and re-encoding them. Empty: the runner computes it.
	ContentHash string
	// Position is the cursor just after this record.
	Position Position
	// Reasons, when set, say why the source itself rejects the record (a checksum that does not
	// hold, a row it cannot parse). The runner sends it to dlq with them instead of raw: it never
	// vanishes, and the rest of the source flows on. Data then holds what was read, as JSON.
	Reasons []event.Reason
}

// Source is what every kind of source implements. The runner calls Open once per run, Read until
// ErrEndOfInput, Ack after a batch is durable in Kafka, and Close at the end of the run.
type Source interface {
	// Open starts a run from pos (nil: from the beginning).
	Open(ctx context.Context, pos Position) error
	// Read returns the next record, ErrEndOfInput when the run is complete, or an error wrapping
	// ErrBackoffRetry when the failure is worth retrying.
	Read(ctx context.Context) (Record, error)
	// Ack tells the source every record up to pos is durable downstream. A snapshot source uses it
	// to know its snapshot completed; most sources do nothing.
	Ack(ctx context.Context, pos Position) error
	// Close ends the run and releases what Open took.
	Close(ctx context.Context) error
}

// Snapshotter is implemented by sources whose every complete run is the whole current list (a
// file, a full table export). After Open it names the snapshot being read — e.g. the hash of the
// file's content — and the runner does the rest: it remembers which records each snapshot held and,
// once a run reached ErrEndOfInput, emits deletes for the records of earlier snapshots the current
// one no longer holds. A run that fails half-way never deletes anything; resuming the same
// snapshot after a crash keeps its id, so it completes the same set. SnapshotID returns "" when
// this run is not a complete list (an incremental run of a feed): then nothing is deleted.
type Snapshotter interface {
	SnapshotID() string
}

// Deps is what the hub gives a kind to build a source.
type Deps struct {
	Logger *slog.Logger
	// DataDir is the hub's data directory; relative paths in options are resolved against the
	// working directory, not this.
	DataDir string
	// Getenv reads secrets (auth tokens, pseudonym keys) named in options; os.Getenv when nil.
	Getenv func(string) string
}

// Env returns d.Getenv, or os.Getenv when unset.
func (d Deps) Env() func(string) string {
	if d.Getenv == nil {
		return os.Getenv
	}
	return d.Getenv
}

// Kind is a kind of source: its name, a help text, and its constructor.
type Kind struct {
	Name        string
	Description string
	New         func(cfg config.Source, deps Deps) (Source, error)
}

// Registry holds the kinds the hub knows. Kinds are registered explicitly, in one file in cmd/.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry with the given kinds.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: make(map[string]Kind)}
	for _, k := range kinds {
		r.kinds[k.Name] = k
	}
	return r
}

// Kind returns the kind registered under name.
func (r *Registry) Kind(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Names lists the registered kinds, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// New builds the source of a configured source.
func (r *Registry) New(cfg config.Source, deps Deps) (Source, error) {
	k, ok := r.kinds[cfg.Kind]
	if !ok {
		return nil, fmt.Errorf("source %q: %w %q (known: %s)", cfg.Name, ErrUnknownKind, cfg.Kind, strings.Join(r.Names(), ", "))
	}
	return k.New(cfg, deps)
}
