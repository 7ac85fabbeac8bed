package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"

	"socialhub/internal/normalize"
)

// EnvKey names the environment variable holding the key, as hex or base64.
const EnvKey = "SOCIALHUB_PSEUDONYM_KEY"

// MinKeyBytes is the shortest key accepted: HMAC-SHA256 gains nothing from more than its block,
// and a key shorter than the hash output would be the weakest link.
const MinKeyBytes = 32

// Pseudonymizer computes pseudonyms. It is safe for concurrent use.
type Pseudonymizer struct {
	// pool reuses keyed HMAC states: building one costs two block hashes and allocations, which
	// add up over millions of residents.
	pool sync.Pool
}

// New returns a pseudonymizer with key, which must be at least MinKeyBytes long. The key is
// copied.
func New(key []byte) (*Pseudonymizer, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrKey, len(key), MinKeyBytes)
	}
	k := append([]byte(nil), key...)
	p := &Pseudonymizer{}
	p.pool.New = func() any { return &state{mac: hmac.New(sha256.New, k)} }
	return p, nil
}

// FromEnv reads the key from EnvKey through getenv (os.Getenv when nil). The value is hex (64 or
// more hex digits) or standard or URL-safe base64, padded or not.
func FromEnv(getenv func(string) string) (*Pseudonymizer, error) {
	if getenv == nil {
		return nil, fmt.Errorf("%w: no environment to read %s from", ErrKey, EnvKey)
	}
	raw := strings.TrimSpace(getenv(EnvKey))
	if raw == "" {
		return nil, fmt.Errorf("%w: the environment variable %s is not set; set it to at least %d random bytes in hex or base64 (e.g. `openssl rand -hex 32`)",
			ErrKey, EnvKey, MinKeyBytes)
	}
	key, err := decodeKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, EnvKey, err)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want at least %d (e.g. `openssl rand -hex 32`)", ErrKey, EnvKey, len(key), MinKeyBytes)
	}
	return New(key)
}

// decodeKey reads hex first: a hex string is also valid base64, and hex is what `openssl rand
// -hex` prints.
func decodeKey(s string) ([]byte, error) {
	if len(s)%2 == 0 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("the value is neither hex nor base64")
}

// Pseudonym normalizes and checks snils (see normalize.SNILS) and returns its pseudonym: 64
// lowercase hex digits. A number that is not a valid СНИЛС is an error wrapping
// normalize.ErrSNILS; the error never repeats the number.
func (p *Pseudonymizer) Pseudonym(snils string) (string, error) {
	digits, err := normalize.SNILS(snils)
	if err != nil {
		return "", err
	}
	return p.sum(digits), nil
}

// state is a keyed HMAC with room for its input and output, reused from pseudonym to pseudonym.
type state struct {
	mac hash.Hash
	in  []byte
	out [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

func (p *Pseudonymizer) sum(digits string) string {
	st := p.pool.Get().(*state)
	st.mac.Reset()
	st.in = append(st.in[:0], digits...)
	st.mac.Write(st.in)
	st.mac.Sum(st.out[:0])
	hex.Encode(st.hex[:], st.out[:])
	s := string(st.hex[:])
	p.pool.Put(st)
	return s
}
