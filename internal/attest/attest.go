package attest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
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
	return store.MigrationSet{Name: "attest", FS: sub}
}

// Type is the JWS "typ" of an attestation.
const Type = "socialhub-attestation+jwt"

// Answer is the answer to one claim of a question.
type Answer struct {
	Claim  string `json:"claim"`
	Answer bool   `json:"answer"`
	// AsOf is the date (YYYY-MM-DD) of the registry data the answer rests on.
	AsOf string `json:"as_of,omitempty"`
	// Rule names the eligibility rule that decided an eligible_for claim.
	Rule string `json:"rule,omitempty"`
}

// Claims is an attestation's payload.
type Claims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"` // the client that asked
	Subject  string `json:"sub"` // the resident's pseudonym
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
	KeyID    string `json:"kid"`
	// QuestionHash is the hex SHA-256 of the canonical question (subject pseudonym, claims as
	// asked, purpose, case id): the asker can show which question this answers.
	QuestionHash string   `json:"question_hash"`
	SubjectFound bool     `json:"subject_found"`
	Answers      []Answer `json:"answers"`
	Purpose      string   `json:"purpose"`
	CaseID       string   `json:"case_id"`
	AuditSeq     int64    `json:"audit_seq"`
}

// Options configures Keys.
type Options struct {
	MasterKey []byte        // 32 bytes (see MasterKey)
	Issuer    string        // the iss of attestations, e.g. the hub's public URL
	TTL       time.Duration // how long an attestation is valid
	// RotateEvery is the age at which Ensure replaces the current key; 0 never rotates.
	RotateEvery time.Duration
	// CacheFor is how long the current key is used before it is read again, so a rotation by
	// another replica takes effect within it. Default 30 s.
	CacheFor time.Duration
	Now      func() time.Time
}

// Defaults.
const (
	DefaultTTL         = 90 * 24 * time.Hour
	DefaultRotateEvery = 30 * 24 * time.Hour
	DefaultIssuer      = "socialhub"
	// skew is the leeway for clocks and for a replica still signing with a key just retired.
	skew = time.Minute
)

// Keys signs with the current key and publishes the live public keys.
type Keys struct {
	pool *pgxpool.Pool
	opts Options
	aead cipher.AEAD

	mu      sync.Mutex
	current *signingKey
}

type signingKey struct {
	kid      string
	signer   jose.Signer
	loadedAt time.Time
}

// New returns the keys on pool.
func New(pool *pgxpool.Pool, opts Options) (*Keys, error) {
	if len(opts.MasterKey) != 32 {
		return nil, fmt.Errorf("%w: %d bytes, want 32", ErrMasterKey, len(opts.MasterKey))
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.CacheFor <= 0 {
		opts.CacheFor = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	block, err := aes.NewCipher(opts.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	return &Keys{pool: pool, opts: opts, aead: aead}, nil
}

// Issuer returns the issuer the keys sign as.
func (k *Keys) Issuer() string { return k.opts.Issuer }

// lockKey is the advisory lock serializing rotations across replicas.
const lockKey int64 = 0x61747465737421 // "attest!"

// Ensure makes sure a current key exists, and rotates it when it is older than RotateEvery. Call
// it at start (and periodically, e.g. daily).
func (k *Keys) Ensure(ctx context.Context) error {
	return k.locked(ctx, func(tx pgx.Tx) error {
		var created time.Time
		err := tx.QueryRow(ctx, `SELECT created_at FROM attest_keys WHERE retired_at IS NULL`).Scan(&created)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = k.rotate(ctx, tx)
			return err
		case err != nil:
			return fmt.Errorf("error reading the current attestation key: %w", err)
		case k.opts.RotateEvery > 0 && k.opts.Now().Sub(created) >= k.opts.RotateEvery:
			_, err = k.rotate(ctx, tx)
			return err
		}
		return nil
	})
}

// Rotate makes a new key current and retires the old one, which stays published until every
// attestation it can have signed has expired. It returns the new key id.
func (k *Keys) Rotate(ctx context.Context) (string, error) {
	var kid string
	err := k.locked(ctx, func(tx pgx.Tx) error {
		var err error
		kid, err = k.rotate(ctx, tx)
		return err
	})
	return kid, err
}

func (k *Keys) locked(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := k.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("error starting a key transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("error locking the attestation keys: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("error committing the attestation keys: %w", err)
	}
	k.mu.Lock()
	k.current = nil // read the current key again on the next signature
	k.mu.Unlock()
	return nil
}

func (k *Keys) rotate(ctx context.Context, tx pgx.Tx) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("error generating an attestation key: %w", err)
	}
	now := k.opts.Now().UTC()
	kid := now.Format("20060102T150405Z") + "-" + hex.EncodeToString(pub[:4])
	sealed, err := k.seal(kid, priv.Seed())
	if err != nil {
		return "", err
	}
	// A replica may sign with the old key until its cache expires: the key stays published for
	// that long beyond the longest attestation, plus clock skew.
	until := now.Add(k.opts.TTL + k.opts.CacheFor + skew)
	if _, err := tx.Exec(ctx, `UPDATE attest_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL`, now, until); err != nil {
		return "", fmt.Errorf("error retiring the attestation key: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO attest_keys (kid, public_key, sealed_key, created_at) VALUES ($1, $2, $3, $4)`,
		kid, []byte(pub), sealed, now); err != nil {
		return "", fmt.Errorf("error storing the attestation key: %w", err)
	}
	return kid, nil
}

func (k *Keys) seal(kid string, seed []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("error sealing an attestation key: %w", err)
	}
	return k.aead.Seal(nonce, nonce, seed, []byte(kid)), nil
}

func (k *Keys) open(kid string, sealed []byte) (ed25519.PrivateKey, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("%w: the sealed key %s is truncated", ErrMasterKey, kid)
	}
	seed, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot open key %s (another master key?)", ErrMasterKey, kid)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// signingKey returns the current key's signer, read again after CacheFor.
func (k *Keys) signingKey(ctx context.Context) (*signingKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Now()
	if k.current != nil && now.Sub(k.current.loadedAt) < k.opts.CacheFor {
		return k.current, nil
	}
	var kid string
	var sealed []byte
	err := k.pool.QueryRow(ctx, `SELECT kid, sealed_key FROM attest_keys WHERE retired_at IS NULL`).Scan(&kid, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("error reading the attestation key: %w", err)
	}
	priv, err := k.open(kid, sealed)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.EdDSA)}},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return nil, fmt.Errorf("error making a signer: %w", err)
	}
	k.current = &signingKey{kid: kid, signer: signer, loadedAt: now}
	return k.current, nil
}

// Sign fills in the issuer, times, id and key id of c, signs it and returns the compact JWS and
// the claims as signed.
func (k *Keys) Sign(ctx context.Context, c Claims) (string, Claims, error) {
	sk, err := k.signingKey(ctx)
	if err != nil {
		return "", Claims{}, err
	}
	now := k.opts.Now()
	c.Issuer, c.IssuedAt, c.Expiry = k.opts.Issuer, now.Unix(), now.Add(k.opts.TTL).Unix()
	c.ID, c.KeyID = uuid.NewString(), sk.kid
	payload, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, fmt.Errorf("error encoding an attestation: %w", err)
	}
	jws, err := sk.signer.Sign(payload)
	if err != nil {
		return "", Claims{}, fmt.Errorf("error signing an attestation: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", Claims{}, fmt.Errorf("error serializing an attestation: %w", err)
	}
	return token, c, nil
}

// JWKS returns the public keys of every key whose attestations may still be valid: the current
// one and the retired ones until their publish_until.
func (k *Keys) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	rows, err := k.pool.Query(ctx, `SELECT kid, public_key FROM attest_keys
		WHERE retired_at IS NULL OR publish_until > $1 ORDER BY created_at DESC`, k.opts.Now())
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("error reading the attestation keys: %w", err)
	}
	var set jose.JSONWebKeySet
	for rows.Next() {
		var kid string
		var pub []byte
		if err := rows.Scan(&kid, &pub); err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("error reading the attestation keys: %w", err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: ed25519.PublicKey(pub), KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	if err := rows.Err(); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("error reading the attestation keys: %w", err)
	}
	return set, nil
}

// Verify checks an attestation against the keys published now.
func (k *Keys) Verify(ctx context.Context, token string) (Claims, error) {
	set, err := k.JWKS(ctx)
	if err != nil {
		return Claims{}, err
	}
	return Verify(token, set, VerifyOptions{Issuer: k.opts.Issuer, Now: k.opts.Now()})
}

// VerifyOptions are what Verify checks besides the signature.
type VerifyOptions struct {
	Issuer   string    // when set, iss must equal it
	Audience string    // when set, aud must equal it
	Now      time.Time // zero means time.Now()
}

// Verify checks an attestation's signature against set (by its kid), then its expiry, issuer and
// audience. Any failure wraps ErrInvalid.
func Verify(token string, set jose.JSONWebKeySet, o VerifyOptions) (Claims, error) {
	jws, err := jose.ParseSignedCompact(strings.TrimSpace(token), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: not a compact JWS signed with EdDSA: %w", ErrInvalid, err)
	}
	if len(jws.Signatures) != 1 {
		return Claims{}, fmt.Errorf("%w: %d signatures, want 1", ErrInvalid, len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if kid == "" || len(keys) == 0 {
		return Claims{}, fmt.Errorf("%w: key %q is not published", ErrInvalid, kid)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: the signature does not verify with key %s", ErrInvalid, kid)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: the payload is not an attestation: %w", ErrInvalid, err)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	switch {
	case c.KeyID != kid:
		return c, fmt.Errorf("%w: the payload's kid %q differs from the header's %q", ErrInvalid, c.KeyID, kid)
	case now.After(time.Unix(c.Expiry, 0).Add(skew)):
		return c, fmt.Errorf("%w: expired at %s", ErrInvalid, time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case time.Unix(c.IssuedAt, 0).After(now.Add(skew)):
		return c, fmt.Errorf("%w: issued in the future (%s)", ErrInvalid, time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339))
	case o.Issuer != "" && c.Issuer != o.Issuer:
		return c, fmt.Errorf("%w: issued by %q, not %q", ErrInvalid, c.Issuer, o.Issuer)
	case o.Audience != "" && c.Audience != o.Audience:
		return c, fmt.Errorf("%w: issued to %q, not %q", ErrInvalid, c.Audience, o.Audience)
	}
	return c, nil
}

// EnvMasterKey names the environment variable holding the master key (32 bytes, hex or base64).
const EnvMasterKey = "SOCIALHUB_ATTEST_KEY"

// MasterKey returns the master key from EnvMasterKey; without it, from the file attest.key in
// dataDir, which it creates (0600) with a random key on first use, so that `socialhub run` needs
// no set-up. A deployment of several replicas sets the variable.
func MasterKey(getenv func(string) string, dataDir string) ([]byte, error) {
	if getenv != nil {
		if v := strings.TrimSpace(getenv(EnvMasterKey)); v != "" {
			return decodeKey(v, EnvMasterKey)
		}
	}
	if dataDir == "" {
		return nil, fmt.Errorf("%w: set %s to 32 random bytes in hex (e.g. `openssl rand -hex 32`)", ErrMasterKey, EnvMasterKey)
	}
	path := filepath.Join(dataDir, "attest.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return decodeKey(strings.TrimSpace(string(b)), path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	// O_EXCL: of two processes starting at once, one writes the key and the other reads it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return MasterKey(nil, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	return key, nil
}

func decodeKey(s, where string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: %s is not 32 bytes in hex or base64", ErrMasterKey, where)
}
