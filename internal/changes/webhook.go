package changes

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Subscription statuses.
const (
	StatusActive = "active"
	StatusPaused = "paused"
)

// secretPrefix marks a Standard Webhooks signing secret; the rest is the base64 of the key.
const secretPrefix = "whsec_"

// Subscription is a webhook subscription as its owner sees it (never with its secret, which is
// shown once, when created or rotated).
type Subscription struct {
	ID                  string     `json:"id"`
	URL                 string     `json:"url"`
	Types               []string   `json:"types"`
	District            string     `json:"district,omitempty"`
	Status              string     `json:"status"`
	PausedAt            *time.Time `json:"paused_at,omitempty"`
	PauseReason         string     `json:"pause_reason,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	LastAttemptAt       *time.Time `json:"last_attempt_at,omitempty"`
	LastSuccessAt       *time.Time `json:"last_delivery_at,omitempty"`
	LastError           string     `json:"last_error,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	FailingSince        *time.Time `json:"failing_since,omitempty"`
	NextRetryAt         *time.Time `json:"next_retry_at,omitempty"`
	Delivered           int64      `json:"delivered"`
	// Backlog is how many events wait for delivery (fanned out and not yet acknowledged).
	Backlog int64 `json:"backlog"`
	// FannedThrough is the feed position up to which events were queued for this subscription.
	FannedThrough int64 `json:"fanned_through"`
	// OldSecretValidUntil is the end of the grace period of the previous secret after a rotation.
	OldSecretValidUntil *time.Time `json:"old_secret_valid_until,omitempty"`
}

// Subscriptions stores webhook subscriptions.
type Subscriptions struct {
	pool *pgxpool.Pool
}

// NewSubscriptions returns the subscription store on pool.
func NewSubscriptions(pool *pgxpool.Pool) *Subscriptions { return &Subscriptions{pool: pool} }

// NewSecret returns a new signing secret: "whsec_" + base64 of 32 random bytes.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// Sign returns the webhook-signature header value for a message: "v1,<base64 HMAC-SHA256>" for
// each secret, space-separated (Standard Webhooks: the signed content is id.timestamp.body, the key
// is the base64-decoded part of the secret after "whsec_").
func Sign(msgID string, ts time.Time, body []byte, secrets ...string) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
		if err != nil {
			return "", fmt.Errorf("error decoding signing secret: %w", err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// NewSubscription is what a subscriber asks for.
type NewSubscription struct {
	URL      string   `json:"url"`
	Types    []string `json:"types"`
	District string   `json:"district"`
}

// ValidateURL checks a receiver URL: absolute http or https, with a host.
func ValidateURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url must be an absolute http or https URL", ErrInvalid)
	}
	if u.User != nil {
		return fmt.Errorf("%w: url must not carry credentials", ErrInvalid)
	}
	return nil
}

// Create registers a subscription for owner; it receives the events published from now on. It
// returns the subscription and its secret.
func (s *Subscriptions) Create(ctx context.Context, owner, rawURL string, f Filter) (Subscription, string, error) {
	if err := ValidateURL(rawURL); err != nil {
		return Subscription{}, "", err
	}
	id := uuid.New()
	secret := NewSecret()
	var district any
	if f.District != "" {
		district = f.District
	}
	types := f.Types
	if types == nil {
		types = []string{}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO webhook_subscriptions (id, owner, url, types, district, secret, fanned_through)
		SELECT $1, $2, $3, $4, $5, $6, last_pub_seq FROM changes_feed`,
		id, owner, strings.TrimSpace(rawURL), types, district, secret)
	if err != nil {
		return Subscription{}, "", fmt.Errorf("error creating subscription: %w", err)
	}
	sub, err := s.Get(ctx, owner, id.String())
	return sub, secret, err
}

const subscriptionColumns = `
	s.id::text, s.url, s.types, coalesce(s.district, ''), s.status, s.paused_at, coalesce(s.pause_reason, ''),
	s.created_at, s.last_attempt_at, s.last_success_at, coalesce(s.last_error, ''), s.consecutive_failures,
	s.failing_since, s.retry_at, s.delivered, s.fanned_through,
	CASE WHEN s.old_secret_until > now() THEN s.old_secret_until END,
	(SELECT count(*) FROM webhook_deliveries d WHERE d.subscription_id = s.id)`

func scanSubscription(row pgx.Row) (Subscription, error) {
	var sub Subscription
	err := row.Scan(&sub.ID, &sub.URL, &sub.Types, &sub.District, &sub.Status, &sub.PausedAt, &sub.PauseReason,
		&sub.CreatedAt, &sub.LastAttemptAt, &sub.LastSuccessAt, &sub.LastError, &sub.ConsecutiveFailures,
		&sub.FailingSince, &sub.NextRetryAt, &sub.Delivered, &sub.FannedThrough, &sub.OldSecretValidUntil, &sub.Backlog)
	return sub, err
}

// Get returns one of owner's subscriptions.
func (s *Subscriptions) Get(ctx context.Context, owner, id string) (Subscription, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return Subscription{}, ErrNotFound
	}
	sub, err := scanSubscription(s.pool.QueryRow(ctx,
		`SELECT `+subscriptionColumns+` FROM webhook_subscriptions s WHERE s.id = $1 AND s.owner = $2`, uid, owner))
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, ErrNotFound
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("error reading subscription: %w", err)
	}
	return sub, nil
}

// List returns owner's subscriptions, oldest first.
func (s *Subscriptions) List(ctx context.Context, owner string) ([]Subscription, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+subscriptionColumns+` FROM webhook_subscriptions s WHERE s.owner = $1 ORDER BY s.created_at, s.id`, owner)
	if err != nil {
		return nil, fmt.Errorf("error listing subscriptions: %w", err)
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, fmt.Errorf("error listing subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error listing subscriptions: %w", err)
	}
	return out, nil
}

// Delete removes one of owner's subscriptions and its pending deliveries.
func (s *Subscriptions) Delete(ctx context.Context, owner, id string) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_subscriptions WHERE id = $1 AND owner = $2`, uid, owner)
	if err != nil {
		return fmt.Errorf("error deleting subscription: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RotateSecret gives the subscription a new secret and keeps the current one signing too until
// grace has passed, so the receiver can switch without rejecting deliveries. It returns the new secret.
func (s *Subscriptions) RotateSecret(ctx context.Context, owner, id string, grace time.Duration) (Subscription, string, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return Subscription{}, "", ErrNotFound
	}
	secret := NewSecret()
	tag, err := s.pool.Exec(ctx, `
		UPDATE webhook_subscriptions
		SET old_secret = secret, old_secret_until = now() + $3 * interval '1 microsecond', secret = $4
		WHERE id = $1 AND owner = $2`, uid, owner, grace.Microseconds(), secret)
	if err != nil {
		return Subscription{}, "", fmt.Errorf("error rotating secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return Subscription{}, "", ErrNotFound
	}
	sub, err := s.Get(ctx, owner, id)
	return sub, secret, err
}

// Resume reactivates a paused subscription: its failure count starts over and every pending
// delivery is due at once.
func (s *Subscriptions) Resume(ctx context.Context, owner, id string) (Subscription, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return Subscription{}, ErrNotFound
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Subscription{}, fmt.Errorf("error resuming subscription: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, `
		UPDATE webhook_subscriptions
		SET status = 'active', paused_at = NULL, pause_reason = NULL, consecutive_failures = 0,
		    failing_since = NULL, retry_at = NULL
		WHERE id = $1 AND owner = $2`, uid, owner)
	if err != nil {
		return Subscription{}, fmt.Errorf("error resuming subscription: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return Subscription{}, ErrNotFound
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_at = now() WHERE subscription_id = $1`, uid); err != nil {
		return Subscription{}, fmt.Errorf("error resuming subscription: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Subscription{}, fmt.Errorf("error resuming subscription: %w", err)
	}
	return s.Get(ctx, owner, id)
}

// Backlog counts pending deliveries of every subscription, for the backlog gauge.
func (s *Subscriptions) Backlog(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("error counting webhook backlog: %w", err)
	}
	return n, nil
}
