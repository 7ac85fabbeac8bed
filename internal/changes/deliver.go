package changes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/event"
	"socialhub/internal/metrics"
)

// Delivery results, the label of the deliveries counter.
const (
	DeliveryOK     = "delivered"
	DeliveryFailed = "failed"
)

// DelivererOptions configures webhook delivery.
type DelivererOptions struct {
	Pool     *pgxpool.Pool
	Notifier *Notifier // wakes the worker when the relay publishes; nil: it polls
	// Client sends the requests; default: Timeout, no redirects (a redirect is a failure, as
	// Standard Webhooks asks).
	Client *http.Client
	// Timeout bounds one delivery attempt (default 10 s); the claim's lease is twice it.
	Timeout time.Duration
	// Concurrency is how many deliveries one worker attempts at once (default 16).
	Concurrency int
	// PollInterval is how often the worker looks for due work without a wake-up (default 1 s).
	PollInterval time.Duration
	// RetryBase and RetryMax shape the exponential back-off: attempt n waits RetryBase·2^(n-1),
	// at most RetryMax (defaults 5 s and 2 h: retries go on for hours).
	RetryBase, RetryMax time.Duration
	// PauseAfter pauses a subscription whose deliveries have all failed for this long (default 24 h).
	PauseAfter time.Duration
	// MaxFailures, if positive, also pauses a subscription after that many consecutive failures.
	MaxFailures int
	Metrics     *metrics.Metrics
	Logger      *slog.Logger
}

// Deliverer delivers the change feed to webhook subscriptions. Several workers (in one process or
// many) share the work safely: subscriptions are fanned out and deliveries claimed with
// FOR UPDATE SKIP LOCKED, and a delivery is only attempted when it is the oldest pending event of
// its entity for its subscription, so entity X's v3 is never sent before its v2 was acknowledged
// while other entities go on.
type Deliverer struct {
	opts       DelivererOptions
	log        *slog.Logger
	lastGauged time.Time
}

// NewDeliverer returns a delivery worker.
func NewDeliverer(opts DelivererOptions) *Deliverer {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.Concurrency // concurrent deliveries to one receiver reuse connections
		opts.Client = &http.Client{
			Transport:     tr,
			Timeout:       opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 5 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 2 * time.Hour
	}
	if opts.PauseAfter <= 0 {
		opts.PauseAfter = 24 * time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Deliverer{opts: opts, log: log}
}

// Backoff returns the wait after the n-th consecutive failure (n >= 1).
func (d *Deliverer) Backoff(n int) time.Duration {
	wait := d.opts.RetryBase
	for i := 1; i < n && wait < d.opts.RetryMax; i++ {
		wait *= 2
	}
	return min(wait, d.opts.RetryMax)
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		wake := d.opts.Notifier.C()
		busy, err := d.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.Warn("webhook delivery failed, retrying", "error", err)
			d.opts.Metrics.Error(metrics.StageWebhooks)
			busy = false
		}
		if busy {
			continue
		}
		poll.Reset(d.opts.PollInterval)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// step fans out new events and attempts one round of due deliveries; busy means there may be more.
func (d *Deliverer) step(ctx context.Context) (busy bool, err error) {
	fanned, err := d.fanOut(ctx)
	if err != nil {
		return false, err
	}
	claimed, err := d.claim(ctx)
	if err != nil {
		return false, err
	}
	var wg sync.WaitGroup
	for i := range claimed {
		wg.Go(func() { d.attempt(ctx, &claimed[i]) })
	}
	wg.Wait()
	// Successes are recorded together: one transaction instead of one per delivery, all of
	// which would queue on the same subscription row.
	var done []*delivery
	for i := range claimed {
		if claimed[i].succeeded {
			done = append(done, &claimed[i])
		}
	}
	if err := d.recordSuccesses(context.WithoutCancel(ctx), done); err != nil {
		// Not recorded: the leases expire and the events are delivered again, with the same
		// webhook-id, which the receiver de-duplicates.
		return false, err
	}
	d.gauge(ctx)
	return fanned || len(claimed) == d.opts.Concurrency, nil
}

// fanChunk bounds how many feed positions one fan-out covers per subscription.
const fanChunk = 10000

// fanOut queues the events published since each subscription's fanned_through that match its
// filter. Paused subscriptions are fanned out too: their events wait for them (and hold back
// pruning) instead of being lost.
func (d *Deliverer) fanOut(ctx context.Context) (bool, error) {
	tag, err := d.opts.Pool.Exec(ctx, `
		WITH head AS (SELECT last_pub_seq AS h FROM changes_feed),
		subs AS (
			SELECT s.id, s.fanned_through AS f, least((SELECT h FROM head), s.fanned_through + $1) AS t,
			       s.types, coalesce(s.district, '') AS district
			FROM webhook_subscriptions s
			WHERE s.fanned_through < (SELECT h FROM head)
			FOR UPDATE OF s SKIP LOCKED
		), ins AS (
			INSERT INTO webhook_deliveries (subscription_id, pub_seq, entity_id)
			SELECT subs.id, o.pub_seq, o.entity_id
			FROM subs JOIN changes_outbox o ON o.pub_seq > subs.f AND o.pub_seq <= subs.t
			WHERE (cardinality(subs.types) = 0 OR o.entity_type = ANY(subs.types)
			       OR o.entity_type || '.' || o.op = ANY(subs.types) OR '*.' || o.op = ANY(subs.types))
			  AND (subs.district = '' OR o.district = subs.district)
			ON CONFLICT DO NOTHING
		)
		UPDATE webhook_subscriptions s SET fanned_through = subs.t FROM subs WHERE s.id = subs.id`, int64(fanChunk))
	if err != nil {
		return false, fmt.Errorf("error fanning out changes to subscriptions: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

type delivery struct {
	subID     string
	pubSeq    int64
	attempts  int
	url       string
	secrets   []string
	event     FeedEvent
	err       error
	status    int
	succeeded bool
}

func (d *Deliverer) claim(ctx context.Context) ([]delivery, error) {
	rows, err := d.opts.Pool.Query(ctx, `
		WITH c AS (
			SELECT d.subscription_id, d.pub_seq
			FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
			WHERE s.status = 'active' AND (s.retry_at IS NULL OR s.retry_at <= now())
			  AND d.next_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now())
			  -- The head of its entity's queue. A scalar subquery runs as an index lookup per
			  -- candidate whatever the table's statistics say; an anti-join planned on the stale
			  -- statistics of this fast-churning table took hundreds of milliseconds.
			  AND d.pub_seq = (
				SELECT min(e.pub_seq) FROM webhook_deliveries e
				WHERE e.subscription_id = d.subscription_id AND e.entity_id = d.entity_id)
			ORDER BY d.pub_seq
			LIMIT $1
			FOR UPDATE OF d SKIP LOCKED
		)
		UPDATE webhook_deliveries d
		SET lease_until = now() + $2 * interval '1 microsecond', attempts = d.attempts + 1
		FROM c, webhook_subscriptions s, changes_outbox o
		WHERE d.subscription_id = c.subscription_id AND d.pub_seq = c.pub_seq
		  AND s.id = d.subscription_id AND o.pub_seq = d.pub_seq
		RETURNING d.subscription_id::text, d.pub_seq, d.attempts, s.url, s.secret,
		          CASE WHEN s.old_secret_until > now() THEN s.old_secret END,
		          o.seq, o.entity_type, o.entity_id, o.op, o.version, o.changed_fields,
		          coalesce(o.district, ''), o.published_at, o.doc`,
		d.opts.Concurrency, (2 * d.opts.Timeout).Microseconds())
	if err != nil {
		return nil, fmt.Errorf("error claiming webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []delivery
	for rows.Next() {
		var dl delivery
		var secret string
		var oldSecret *string
		var doc []byte
		e := &dl.event
		if err := rows.Scan(&dl.subID, &dl.pubSeq, &dl.attempts, &dl.url, &secret, &oldSecret,
			&e.OutboxSeq, &e.EntityType, &e.ID, &e.Op, &e.Version, &e.ChangedFields, &e.District, &e.PublishedAt, &doc); err != nil {
			return nil, fmt.Errorf("error claiming webhook deliveries: %w", err)
		}
		e.Seq = dl.pubSeq
		e.Type = event.Type("catalog", e.EntityType, e.Op)
		if len(doc) > 0 {
			e.Entity = doc
		}
		dl.secrets = []string{secret}
		if oldSecret != nil {
			dl.secrets = append(dl.secrets, *oldSecret)
		}
		out = append(out, dl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error claiming webhook deliveries: %w", err)
	}
	return out, nil
}

// WebhookPayload is the body of a delivery (the Standard Webhooks payload shape).
type WebhookPayload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      FeedEvent `json:"data"`
}

// MessageID is the webhook-id of an event for a subscription: the same on every retry, so the
// receiver de-duplicates by it.
func MessageID(subscriptionID string, seq int64) string {
	return "msg_" + strings.ReplaceAll(subscriptionID, "-", "") + "_" + strconv.FormatInt(seq, 10)
}

func (d *Deliverer) attempt(ctx context.Context, dl *delivery) {
	dl.err = d.send(ctx, dl)
	dl.succeeded = dl.err == nil
	if ctx.Err() != nil && !dl.succeeded {
		return // shutting down: the lease expires and another worker retries
	}
	if !dl.succeeded {
		if err := d.recordFailure(context.WithoutCancel(ctx), dl); err != nil {
			d.log.Warn("error recording a failed webhook delivery", "subscription", dl.subID, "seq", dl.pubSeq, "error", err)
		}
	}
	if d.opts.Metrics != nil {
		result := DeliveryOK
		if !dl.succeeded {
			result = DeliveryFailed
		}
		d.opts.Metrics.WebhookDeliveries.WithLabelValues(result).Inc()
	}
}

func (d *Deliverer) send(ctx context.Context, dl *delivery) error {
	now := time.Now()
	body, err := json.Marshal(WebhookPayload{Type: dl.event.Type, Timestamp: now.UTC(), Data: dl.event})
	if err != nil {
		return fmt.Errorf("error encoding delivery: %w", err)
	}
	id := MessageID(dl.subID, dl.pubSeq)
	sig, err := Sign(id, now, body, dl.secrets...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("error building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "socialhub-webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("error sending: %w", err)
	}
	// Read a little of the body so the connection can be reused; the content does not matter.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	dl.status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: receiver answered %s", errRejected, resp.Status)
	}
	return nil
}

var errRejected = errors.New("delivery rejected")

// recordSuccesses removes acknowledged deliveries and resets their subscriptions' failures.
func (d *Deliverer) recordSuccesses(ctx context.Context, dls []*delivery) error {
	if len(dls) == 0 {
		return nil
	}
	subs := make([]string, len(dls))
	seqs := make([]int64, len(dls))
	for i, dl := range dls {
		subs[i], seqs[i] = dl.subID, dl.pubSeq
	}
	_, err := d.opts.Pool.Exec(ctx, `
		WITH done AS (
			DELETE FROM webhook_deliveries d
			USING unnest($1::uuid[], $2::bigint[]) AS u(sub, seq)
			WHERE d.subscription_id = u.sub AND d.pub_seq = u.seq
			RETURNING d.subscription_id
		), counts AS (SELECT subscription_id, count(*) AS n FROM done GROUP BY subscription_id)
		UPDATE webhook_subscriptions s
		SET consecutive_failures = 0, failing_since = NULL, retry_at = NULL, last_error = NULL,
		    last_attempt_at = now(), last_success_at = now(), delivered = delivered + counts.n
		FROM counts WHERE s.id = counts.subscription_id`, subs, seqs)
	if err != nil {
		return fmt.Errorf("error recording webhook deliveries: %w", err)
	}
	return nil
}

// recordFailure stores a failed attempt: the delivery is due again after its back-off, the
// subscription backs off as a whole and is paused once it has failed for too long or too often.
func (d *Deliverer) recordFailure(ctx context.Context, dl *delivery) error {
	tx, err := d.opts.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	reason := dl.err.Error()
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_deliveries
		SET lease_until = NULL, next_at = now() + $3 * interval '1 microsecond', last_error = $4
		WHERE subscription_id = $1 AND pub_seq = $2`,
		dl.subID, dl.pubSeq, d.Backoff(dl.attempts).Microseconds(), reason); err != nil {
		return err
	}
	var failures int
	var failingMicros int64
	var status string
	err = tx.QueryRow(ctx, `
		UPDATE webhook_subscriptions
		SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, now()),
		    last_attempt_at = now(), last_error = $2
		WHERE id = $1
		RETURNING consecutive_failures, (extract(epoch FROM now() - failing_since) * 1e6)::bigint, status`,
		dl.subID, reason).Scan(&failures, &failingMicros, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	failingFor := time.Duration(failingMicros) * time.Microsecond
	var pauseReason string
	switch {
	case status != StatusActive:
	case d.opts.MaxFailures > 0 && failures >= d.opts.MaxFailures:
		pauseReason = fmt.Sprintf("%d consecutive delivery failures, the last: %s", failures, reason)
	case failingFor >= d.opts.PauseAfter:
		pauseReason = fmt.Sprintf("every delivery failed for %s, the last: %s", failingFor.Round(time.Second), reason)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_subscriptions
		SET retry_at = now() + $2 * interval '1 microsecond',
		    status = CASE WHEN $3 <> '' THEN 'paused' ELSE status END,
		    paused_at = CASE WHEN $3 <> '' THEN now() ELSE paused_at END,
		    pause_reason = CASE WHEN $3 <> '' THEN $3 ELSE pause_reason END
		WHERE id = $1`, dl.subID, d.Backoff(failures).Microseconds(), pauseReason); err != nil {
		return err
	}
	if pauseReason != "" {
		d.log.Warn("webhook subscription paused", "subscription", dl.subID, "reason", pauseReason)
	}
	return tx.Commit(ctx)
}

// gauge refreshes the backlog gauge, at most once a second: counting is not free.
func (d *Deliverer) gauge(ctx context.Context) {
	if d.opts.Metrics == nil || time.Since(d.lastGauged) < time.Second {
		return
	}
	d.lastGauged = time.Now()
	var n int64
	if err := d.opts.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&n); err == nil {
		d.opts.Metrics.WebhookBacklog.Set(float64(n))
	}
}
