package changes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/catalog"
	"socialhub/internal/event"
	"socialhub/schemas"
)

// FeedEvent is a published change as polling, SSE and webhooks deliver it. Seq is the feed's
// sequence (the outbox row's pub_seq, see migration 002): it grows in publication order, so a
// consumer resumes after the last Seq it handled. OutboxSeq is the seq of the change event on
// the changes topic (data.seq there), for consumers that also read Kafka.
type FeedEvent struct {
	Seq           int64           `json:"seq"`
	Type          string          `json:"type"`
	EntityType    string          `json:"entity_type"`
	ID            string          `json:"id"`
	Op            string          `json:"op"`
	Version       int64           `json:"version"`
	ChangedFields []string        `json:"changed_fields,omitempty"`
	District      string          `json:"district,omitempty"`
	PublishedAt   time.Time       `json:"published_at"`
	OutboxSeq     int64           `json:"outbox_seq"`
	Entity        json.RawMessage `json:"entity,omitempty"`

	frame []byte // the event as an SSE frame, encoded once for every stream (feedCache)
}

// Filter selects feed events. Types holds "entity" (service), "entity.op" (service.updated) or
// "*.op" (*.deleted) items, any of which may match; empty matches every event. District matches
// the district of the entity's address (see DistrictOf); empty matches every event.
type Filter struct {
	Types    []string `json:"types"`
	District string   `json:"district,omitempty"`
}

// FieldError is a field-level reason a request was refused.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// entityTypes are what filters may name; "application" is a case's status change (internal/cases).
var entityTypes = []string{catalog.EntityService, catalog.EntityOrganization, catalog.EntityLocation,
	catalog.EntityServiceAtLocation, catalog.EntityFunding, "application"}

var opPattern = regexp.MustCompile(`^[a-z][a-z_]*$`)

// ParseFilter validates a filter given as comma-separated types and a district name (a reference
// name or one of its variants, which it replaces by the reference name). field names the
// parameters in errors ("types", "district").
func ParseFilter(types []string, district string) (Filter, []FieldError) {
	var f Filter
	var errs []FieldError
	seen := map[string]bool{}
	for _, group := range types {
		for _, t := range strings.Split(group, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "socialhub.catalog.")
			if t == "" {
				continue
			}
			entity, op, hasOp := strings.Cut(t, ".")
			switch {
			case entity != "*" && !contains(entityTypes, entity):
				errs = append(errs, FieldError{Field: "types", Message: fmt.Sprintf(
					"unknown entity type %q: use one of %s, optionally with .<op> (service.updated) or *.<op>",
					entity, strings.Join(entityTypes, ", "))})
				continue
			case entity == "*" && !hasOp:
				errs = append(errs, FieldError{Field: "types", Message: `"*" needs an op, as in *.deleted`})
				continue
			case hasOp && !opPattern.MatchString(op):
				errs = append(errs, FieldError{Field: "types", Message: fmt.Sprintf("invalid op %q in %q: ops are lower-case words such as created, updated, merged, deleted", op, t)})
				continue
			}
			if !seen[t] {
				seen[t] = true
				f.Types = append(f.Types, t)
			}
		}
	}
	if district = strings.TrimSpace(district); district != "" {
		name, ok := districtName(district)
		if !ok {
			errs = append(errs, FieldError{Field: "district", Message: fmt.Sprintf("unknown district %q: use a Moscow district or settlement name, as in Марьино", district)})
		}
		f.District = name
	}
	if f.Types == nil {
		f.Types = []string{}
	}
	return f, errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func districtName(s string) (string, bool) {
	for _, d := range schemas.Districts() {
		if strings.EqualFold(d.Name, s) {
			return d.Name, true
		}
		for _, v := range d.Variants {
			if strings.EqualFold(v, s) {
				return d.Name, true
			}
		}
	}
	return "", false
}

// Feed reads the published change feed by pub_seq and prunes it past its retention.
type Feed struct {
	pool *pgxpool.Pool
}

// NewFeed returns the feed on pool.
func NewFeed(pool *pgxpool.Pool) *Feed { return &Feed{pool: pool} }

// Bounds returns the highest pruned pub_seq (resuming before it is ErrGone) and the last pub_seq
// handed out.
func (f *Feed) Bounds(ctx context.Context) (prunedThrough, last int64, err error) {
	if err := f.pool.QueryRow(ctx, `SELECT pruned_through, last_pub_seq FROM changes_feed`).Scan(&prunedThrough, &last); err != nil {
		return 0, 0, fmt.Errorf("error reading feed bounds: %w", err)
	}
	return prunedThrough, last, nil
}

// Read returns up to limit events with pub_seq > after that match flt, in pub_seq order. It
// returns ErrGone when events after `after` have been pruned.
func (f *Feed) Read(ctx context.Context, after int64, limit int, flt Filter) ([]FeedEvent, error) {
	types := flt.Types
	if types == nil {
		types = []string{} // a NULL array would match nothing
	}
	rows, err := f.pool.Query(ctx, `
		SELECT pub_seq, seq, entity_type, entity_id, op, version, changed_fields, coalesce(district, ''), published_at, doc
		FROM changes_outbox
		WHERE pub_seq > $1
		  AND (cardinality($2::text[]) = 0 OR entity_type = ANY($2) OR entity_type || '.' || op = ANY($2) OR '*.' || op = ANY($2))
		  AND ($3 = '' OR district = $3)
		ORDER BY pub_seq LIMIT $4`, after, types, flt.District, limit)
	if err != nil {
		return nil, fmt.Errorf("error reading change feed: %w", err)
	}
	defer rows.Close()
	var out []FeedEvent
	for rows.Next() {
		var e FeedEvent
		var doc []byte
		if err := rows.Scan(&e.Seq, &e.OutboxSeq, &e.EntityType, &e.ID, &e.Op, &e.Version, &e.ChangedFields, &e.District, &e.PublishedAt, &doc); err != nil {
			return nil, fmt.Errorf("error reading change feed: %w", err)
		}
		if len(doc) > 0 {
			e.Entity = doc
		}
		e.Type = event.Type("catalog", e.EntityType, e.Op)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error reading change feed: %w", err)
	}
	// Checked after reading: pruning deletes rows and raises pruned_through in one transaction,
	// and pruned_through only grows, so if it is still <= after now, nothing we should have seen
	// was missing from the read above.
	pruned, _, err := f.Bounds(ctx)
	if err != nil {
		return nil, err
	}
	if after < pruned {
		return nil, fmt.Errorf("%w: events up to %d were pruned; resume from %d or later", ErrGone, pruned, pruned)
	}
	return out, nil
}

// pruneChunk bounds how many pub_seqs one pruning transaction covers.
const pruneChunk = 5000

// Prune deletes published events older than before, except those a webhook subscription has
// yet to fan out or deliver, and returns how many it deleted.
func (f *Feed) Prune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		var advanced bool
		err := f.pool.QueryRow(ctx, `
			WITH feed AS (SELECT pruned_through FROM changes_feed FOR UPDATE),
			old AS (SELECT max(pub_seq) AS m FROM changes_outbox WHERE pub_seq IS NOT NULL AND published_at < $1),
			cut AS (
				-- least ignores NULLs: no subscription holds nothing back, but nothing old is nothing to cut.
				SELECT CASE WHEN old.m IS NULL THEN NULL ELSE least(old.m,
					(SELECT pruned_through FROM feed) + $2,
					(SELECT min(fanned_through) FROM webhook_subscriptions)) END AS p
				FROM old
			), del AS (
				DELETE FROM changes_outbox o USING cut
				WHERE o.pub_seq <= cut.p
				  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.pub_seq = o.pub_seq)
				RETURNING 1
			), upd AS (
				UPDATE changes_feed SET pruned_through = cut.p FROM cut
				WHERE cut.p > changes_feed.pruned_through
				RETURNING 1
			)
			SELECT (SELECT count(*) FROM del), EXISTS (SELECT 1 FROM upd)`, before, int64(pruneChunk)).Scan(&n, &advanced)
		if err != nil {
			return total, fmt.Errorf("error pruning change feed: %w", err)
		}
		total += n
		if !advanced {
			return total, nil
		}
	}
}

// Pruner prunes the feed periodically.
type Pruner struct {
	feed      *Feed
	retention time.Duration
	interval  time.Duration
	log       *slog.Logger
}

// NewPruner returns a pruner keeping retention of published events, pruning every interval.
func NewPruner(feed *Feed, retention, interval time.Duration, logger *slog.Logger) *Pruner {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if interval <= 0 {
		interval = time.Hour
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Pruner{feed: feed, retention: retention, interval: interval, log: logger}
}

// DefaultRetention is how long published change events stay in the feed by default.
const DefaultRetention = 30 * 24 * time.Hour

// Run prunes until ctx ends. Several instances are safe: pruning locks the feed row.
func (p *Pruner) Run(ctx context.Context) error {
	for {
		n, err := p.feed.Prune(ctx, time.Now().Add(-p.retention))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("pruning the change feed failed", "error", err)
		} else if n > 0 {
			p.log.Info("pruned the change feed", "events", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.interval):
		}
	}
}
