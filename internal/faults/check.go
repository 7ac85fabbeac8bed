package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"socialhub/internal/broker"
	"socialhub/internal/catalog"
	"socialhub/internal/event"
	"socialhub/internal/resolve"
)

// Manifest is what a scenario fed the hub: the good records that must land and the poison ones
// that must end on dlq.
type Manifest struct {
	// Good maps a source name to the external ids of its good records.
	Good map[string][]string
	// Poison lists the Kafka keys ("<source>/<external id>") of records that must be on dlq.
	Poison []string
}

// Env is where the checker looks.
type Env struct {
	Pool   *pgxpool.Pool
	Kafka  broker.Config
	Topics event.Topics
	// ResolveGroup is the resolve stage's consumer group (default "socialhub-resolve").
	ResolveGroup string
	// Reference, when set, is the catalog digest of an uninterrupted run of the same input: the
	// checked catalog must equal it (no canonical duplicate, nothing lost, no extra version).
	Reference map[string]catalog.EntityDigest
}

// Result is what Check found.
type Result struct {
	Landed        int      // good records stored in the catalog
	Missing       []string // good records not stored ("<source>/<id>")
	PoisonInDLQ   int
	PoisonMissing []string // poison keys not on dlq
	GoodInDLQ     []string // good keys that ended on dlq
	Entities      int      // canonical entities
	DigestDiff    []string // entities that differ from the reference
	StoredOffsets map[int]int64
	EndOffsets    map[int]int64 // of the valid topic
	Changes       int           // events on the changes topic
	Regressions   []string      // entities whose version went backwards or repeated with new content
}

// Err joins every violation, or returns nil.
func (r Result) Err() error {
	var errs []error
	add := func(cond bool, format string, a ...any) {
		if cond {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrViolation}, a...)...))
		}
	}
	add(len(r.Missing) > 0, "%d good records lost, e.g. %v", len(r.Missing), first(r.Missing))
	add(len(r.PoisonMissing) > 0, "%d poison records not on dlq, e.g. %v", len(r.PoisonMissing), first(r.PoisonMissing))
	add(len(r.GoodInDLQ) > 0, "%d good records on dlq, e.g. %v", len(r.GoodInDLQ), first(r.GoodInDLQ))
	add(len(r.DigestDiff) > 0, "%d canonical entities differ from the uninterrupted run (duplicates, losses or extra versions), e.g. %v", len(r.DigestDiff), first(r.DigestDiff))
	add(!maps.Equal(r.StoredOffsets, r.EndOffsets), "stored resolve offsets %v differ from the valid topic's ends %v", r.StoredOffsets, r.EndOffsets)
	add(len(r.Regressions) > 0, "%d entities' versions went backwards on changes, e.g. %v", len(r.Regressions), first(r.Regressions))
	return errors.Join(errs...)
}

func first(s []string) []string { return s[:min(len(s), 5)] }

// Check verifies the invariants once the hub has settled (lag zero, outbox drained).
func Check(ctx context.Context, env Env, man Manifest) (Result, error) {
	var r Result
	cat := catalog.NewStore(env.Pool)
	for _, src := range slices.Sorted(maps.Keys(man.Good)) {
		stored, err := cat.SourceRecordIDs(ctx, src)
		if err != nil {
			return r, err
		}
		have := map[string]bool{}
		for _, id := range stored {
			have[id] = true
		}
		for _, id := range man.Good[src] {
			if have[id] {
				r.Landed++
			} else {
				r.Missing = append(r.Missing, src+"/"+id)
			}
		}
	}

	dlqKeys := map[string]bool{}
	if err := readTopic(ctx, env.Kafka, env.Topics.DLQ, func(m kafka.Message) error {
		dlqKeys[string(m.Key)] = true
		return nil
	}); err != nil {
		return r, err
	}
	for _, k := range man.Poison {
		if dlqKeys[k] {
			r.PoisonInDLQ++
		} else {
			r.PoisonMissing = append(r.PoisonMissing, k)
		}
	}
	for src, ids := range man.Good {
		for _, id := range ids {
			if dlqKeys[src+"/"+id] {
				r.GoodInDLQ = append(r.GoodInDLQ, src+"/"+id)
			}
		}
	}

	digest, err := cat.Digest(ctx)
	if err != nil {
		return r, err
	}
	r.Entities = len(digest)
	if env.Reference != nil {
		for k, want := range env.Reference {
			if got, ok := digest[k]; !ok || got != want {
				r.DigestDiff = append(r.DigestDiff, fmt.Sprintf("%s want %+v got %+v", k, want, got))
			}
		}
		for k := range digest {
			if _, ok := env.Reference[k]; !ok {
				r.DigestDiff = append(r.DigestDiff, k+" not in the uninterrupted run")
			}
		}
		slices.Sort(r.DigestDiff)
	}

	// Invariant 2: what resolve stored as its position is exactly the end of what it read.
	group := env.ResolveGroup
	if group == "" {
		group = "socialhub-resolve"
	}
	if r.StoredOffsets, err = resolve.Offsets(ctx, env.Pool, group, env.Topics.Valid); err != nil {
		return r, err
	}
	ends, err := broker.EndOffsets(ctx, env.Kafka, env.Topics.Valid)
	if err != nil {
		return r, err
	}
	r.EndOffsets = map[int]int64{}
	for p, e := range ends {
		if e > 0 {
			r.EndOffsets[p] = e
		}
	}

	// Invariant 5: per entity, versions on changes only grow; a repeated version is a re-publish
	// of the same change (the relay is at least once), never different content.
	type seen struct {
		version int64
		op      string
	}
	last := map[string]seen{}
	if err := readTopic(ctx, env.Kafka, env.Topics.Changes, func(m kafka.Message) error {
		r.Changes++
		var ev struct {
			Data struct {
				Version int64  `json:"version"`
				Op      string `json:"op"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			r.Regressions = append(r.Regressions, fmt.Sprintf("%s: undecodable change event: %v", m.Key, err))
			return nil
		}
		k := string(m.Key)
		prev, ok := last[k]
		v := ev.Data.Version
		switch {
		case ok && v < prev.version:
			r.Regressions = append(r.Regressions, fmt.Sprintf("%s: version %d after %d", k, v, prev.version))
		case ok && v == prev.version && ev.Data.Op != prev.op:
			r.Regressions = append(r.Regressions, fmt.Sprintf("%s: version %d twice with ops %s and %s", k, v, prev.op, ev.Data.Op))
		}
		if !ok || v >= prev.version {
			last[k] = seen{v, ev.Data.Op}
		}
		return nil
	}); err != nil {
		return r, err
	}
	return r, nil
}

// readTopic calls fn with every record of topic, partition by partition, from the start to the
// end it has now.
func readTopic(ctx context.Context, cfg broker.Config, topic string, fn func(kafka.Message) error) error {
	ends, err := broker.EndOffsets(ctx, cfg, topic)
	if err != nil {
		return err
	}
	for p, end := range ends {
		if end == 0 {
			continue
		}
		rc := broker.ReaderConfig(cfg, topic)
		rc.Partition = p
		rd := kafka.NewReader(rc)
		for {
			m, err := rd.FetchMessage(ctx)
			if err != nil {
				_ = rd.Close()
				return fmt.Errorf("error reading %s[%d]: %w", topic, p, err)
			}
			if err := fn(m); err != nil {
				_ = rd.Close()
				return err
			}
			if m.Offset+1 >= end {
				break
			}
		}
		if err := rd.Close(); err != nil {
			return err
		}
	}
	return nil
}
