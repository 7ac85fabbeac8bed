package listings

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"socialhub/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tables this package owns.
func Migrations() store.MigrationSet {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the directory is embedded: this cannot fail
	}
	return store.MigrationSet{Name: "listings", FS: sub}
}

// Listing is a listing an NGO pushed, as last accepted.
type Listing struct {
	ExternalID     string
	ClientID       string
	Source         string
	OrganizationID string // local id of the organization in the documents
	Op             string
	EventID        string
	ContentHash    string
	AcceptedAt     time.Time
}

// Feed is an HSDS feed an NGO registered.
type Feed struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"client_id"`
	Source    string    `json:"source"`
	URL       string    `json:"url"`
	Schedule  string    `json:"schedule"`
	CreatedAt time.Time `json:"created_at"`
}

// Store reads and writes listings and feeds.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns the store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Listing returns the listing of external id id, whoever's it is.
func (s *Store) Listing(ctx context.Context, id string) (Listing, error) {
	var l Listing
	err := s.pool.QueryRow(ctx, `SELECT external_id, client_id, source, organization_id, op, event_id, content_hash, accepted_at
		FROM listings WHERE external_id = $1`, id).
		Scan(&l.ExternalID, &l.ClientID, &l.Source, &l.OrganizationID, &l.Op, &l.EventID, &l.ContentHash, &l.AcceptedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Listing{}, fmt.Errorf("listing %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Listing{}, fmt.Errorf("error reading listing %s: %w", id, err)
	}
	return l, nil
}

// Claim reserves external id id for clientID before anything is published, so two NGOs pushing
// the same id at once cannot both publish it: the second is ErrNotOwner.
func (s *Store) Claim(ctx context.Context, id, clientID, source, orgID string) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO listings (external_id, client_id, source, organization_id, op, event_id, accepted_at, created_at)
		VALUES ($1, $2, $3, $4, 'delete', '', now(), now())
		ON CONFLICT (external_id) DO UPDATE SET organization_id = excluded.organization_id
		WHERE listings.client_id = excluded.client_id`, id, clientID, source, orgID)
	if err != nil {
		return fmt.Errorf("error reserving listing %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("listing %s: %w", id, ErrNotOwner)
	}
	return nil
}

// Accepted records that Kafka acknowledged the listing's event.
func (s *Store) Accepted(ctx context.Context, l Listing) error {
	_, err := s.pool.Exec(ctx, `UPDATE listings SET op = $3, event_id = $4, content_hash = $5, accepted_at = $6
		WHERE external_id = $1 AND client_id = $2`, l.ExternalID, l.ClientID, l.Op, l.EventID, l.ContentHash, l.AcceptedAt)
	if err != nil {
		return fmt.Errorf("error recording listing %s: %w", l.ExternalID, err)
	}
	return nil
}

// AddFeed registers a feed; the same URL twice for one client is the same feed (returned, not
// created again).
func (s *Store) AddFeed(ctx context.Context, f Feed) (Feed, bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO listing_feeds (id, client_id, source, url, schedule, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id, url) DO NOTHING`,
		f.ID, f.ClientID, f.Source, f.URL, f.Schedule, f.CreatedAt)
	if err != nil {
		return Feed{}, false, fmt.Errorf("error registering feed %s: %w", f.URL, err)
	}
	if tag.RowsAffected() == 1 {
		return f, true, nil
	}
	feeds, err := s.feeds(ctx, `WHERE client_id = $1 AND url = $2`, f.ClientID, f.URL)
	if err != nil || len(feeds) == 0 {
		return Feed{}, false, errors.Join(err, fmt.Errorf("feed %s: %w", f.URL, ErrNotFound))
	}
	return feeds[0], false, nil
}

// Feed returns one feed, whoever's it is.
func (s *Store) Feed(ctx context.Context, id string) (Feed, error) {
	feeds, err := s.feeds(ctx, `WHERE id = $1`, id)
	if err != nil {
		return Feed{}, err
	}
	if len(feeds) == 0 {
		return Feed{}, fmt.Errorf("feed %s: %w", id, ErrNotFound)
	}
	return feeds[0], nil
}

// Feeds returns a client's feeds, or every feed when clientID is "", oldest first.
func (s *Store) Feeds(ctx context.Context, clientID string) ([]Feed, error) {
	if clientID == "" {
		return s.feeds(ctx, ``)
	}
	return s.feeds(ctx, `WHERE client_id = $1`, clientID)
}

// DeleteFeed removes a feed.
func (s *Store) DeleteFeed(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM listing_feeds WHERE id = $1`, id); err != nil {
		return fmt.Errorf("error deleting feed %s: %w", id, err)
	}
	return nil
}

func (s *Store) feeds(ctx context.Context, where string, args ...any) ([]Feed, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, client_id, source, url, schedule, created_at FROM listing_feeds `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("error reading feeds: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Feed, error) {
		var f Feed
		err := r.Scan(&f.ID, &f.ClientID, &f.Source, &f.URL, &f.Schedule, &f.CreatedAt)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("error reading feeds: %w", err)
	}
	return out, nil
}
