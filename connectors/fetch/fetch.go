package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/time/rate"

	"socialhub/connectors"
)

var backoffRetry = connectors.ErrBackoffRetry

// DefaultMaxBytes bounds what one fetch reads into memory.
const DefaultMaxBytes = 1 << 30

// Auth says how to authenticate to an HTTP source. Secrets never sit in the config file: the
// options name the environment variables that hold them.
type Auth struct {
	// Type is "", "bearer" or "basic".
	Type string `yaml:"type"`
	// TokenEnv names the variable holding the bearer token.
	TokenEnv string `yaml:"token_env"`
	// UserEnv and PasswordEnv name the variables holding the basic-auth user and password.
	UserEnv     string `yaml:"user_env"`
	PasswordEnv string `yaml:"password_env"`
}

// Options configure a Fetcher. The yaml tags let a kind embed them in its own options.
type Options struct {
	// Timeout bounds one HTTP request (default 1m).
	Timeout time.Duration `yaml:"timeout"`
	// RateLimit is the most requests per second to one source (default 5; negative: no limit).
	RateLimit float64 `yaml:"rate_limit"`
	Auth      Auth    `yaml:"auth"`
	// MaxBytes bounds a body (default DefaultMaxBytes).
	MaxBytes int64 `yaml:"-"`
}

// Validate checks the options and that the auth secrets are present in the environment.
func (o Options) Validate(getenv func(string) string) error {
	var problems []string
	switch o.Auth.Type {
	case "":
	case "bearer":
		if o.Auth.TokenEnv == "" {
			problems = append(problems, "auth.token_env is required for bearer auth")
		} else if getenv(o.Auth.TokenEnv) == "" {
			problems = append(problems, fmt.Sprintf("auth.token_env: the environment variable %s is not set", o.Auth.TokenEnv))
		}
	case "basic":
		if o.Auth.UserEnv == "" || o.Auth.PasswordEnv == "" {
			problems = append(problems, "auth.user_env and auth.password_env are required for basic auth")
		} else if getenv(o.Auth.UserEnv) == "" {
			problems = append(problems, fmt.Sprintf("auth.user_env: the environment variable %s is not set", o.Auth.UserEnv))
		}
	default:
		problems = append(problems, fmt.Sprintf("auth.type must be bearer or basic, got %q", o.Auth.Type))
	}
	if o.Timeout < 0 {
		problems = append(problems, "timeout must not be negative")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Fetcher gets files and HTTP resources for one source.
type Fetcher struct {
	opts    Options
	client  *http.Client
	limiter *rate.Limiter
	getenv  func(string) string
}

// New returns a fetcher. getenv reads the auth secrets (os.Getenv when nil).
func New(opts Options, getenv func(string) string) *Fetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 5
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	if opts.RateLimit > 0 {
		lim = rate.NewLimiter(rate.Limit(opts.RateLimit), 1)
	}
	return &Fetcher{opts: opts, client: &http.Client{Timeout: opts.Timeout}, limiter: lim, getenv: getenv}
}

// Validators are what a conditional request sends back: the ETag and Last-Modified of the content
// last read to its end.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// File is a whole fetched file.
type File struct {
	Body []byte
	// Validators of this content, to store with the cursor.
	Validators Validators
	// NotModified: the server said the content is the one of the validators sent; Body is empty.
	NotModified bool
}

// ReadFile reads a local path or fetches an http(s) URL. For a URL, prev makes the request
// conditional. Exactly one of path and rawURL is set.
func (f *Fetcher) ReadFile(ctx context.Context, path, rawURL string, prev Validators) (File, error) {
	if path != "" {
		b, err := readLocal(path, f.opts.MaxBytes)
		return File{Body: b}, err
	}
	req, err := f.NewRequest(ctx, http.MethodGet, rawURL)
	if err != nil {
		return File{}, err
	}
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := f.Do(req)
	if err != nil {
		return File{}, err
	}
	defer resp.Body.Close()
	v := Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if resp.StatusCode == http.StatusNotModified {
		return File{Validators: prev, NotModified: true}, nil
	}
	b, err := f.ReadBody(resp)
	if err != nil {
		return File{}, err
	}
	return File{Body: b, Validators: v}, nil
}

func readLocal(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("error opening %s: %w", path, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, path, limit)
	}
	return b, nil
}

// NewRequest builds a request with the source's authentication.
func (f *Fetcher) NewRequest(ctx context.Context, method, rawURL string) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: not an http(s) URL: %q", connectors.ErrBadOptions, rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("error building request for %s: %w", rawURL, err)
	}
	req.Header.Set("User-Agent", "socialhub")
	switch f.opts.Auth.Type {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+f.getenv(f.opts.Auth.TokenEnv))
	case "basic":
		req.SetBasicAuth(f.getenv(f.opts.Auth.UserEnv), f.getenv(f.opts.Auth.PasswordEnv))
	}
	return req, nil
}

// Do sends a request under the source's rate limit and classifies the answer: a 2xx or 304
// response is returned for the caller to read and close; any other status is a *StatusError (its
// body closed), transient for 5xx, 408 and 429; a network failure or timeout wraps
// connectors.ErrBackoffRetry.
func (f *Fetcher) Do(req *http.Request) (*http.Response, error) {
	if err := f.limiter.Wait(req.Context()); err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%w: %s %s: %w", backoffRetry, req.Method, redact(req.URL), err)
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	se := &StatusError{
		URL: redact(req.URL), StatusCode: resp.StatusCode, Status: resp.Status,
		transient: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout,
		Body:      strings.TrimSpace(strings.ToValidUTF8(string(head), "?")),
	}
	se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return nil, se
}

// ReadBody reads a response body up to the limit. A connection cut mid-body is transient.
func (f *Fetcher) ReadBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBytes+1))
	if err != nil {
		if ctxErr := resp.Request.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%w: error reading %s: %w", backoffRetry, redact(resp.Request.URL), err)
	}
	if int64(len(b)) > f.opts.MaxBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, redact(resp.Request.URL), f.opts.MaxBytes)
	}
	return b, nil
}

// redact drops a URL's user info, which must not reach logs or stored errors.
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	return c.String()
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// IsTimeout tells a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Encodings DecodeText accepts.
const (
	EncodingAuto        = "auto"
	EncodingUTF8        = "utf-8"
	EncodingWindows1251 = "windows-1251"
)

// CheckEncoding validates an encoding option value.
func CheckEncoding(enc string) error {
	switch strings.ToLower(enc) {
	case "", EncodingAuto, EncodingUTF8, "utf8", EncodingWindows1251, "cp1251":
		return nil
	}
	return fmt.Errorf("encoding must be auto, utf-8 or windows-1251, got %q", enc)
}

// DecodeText returns raw as UTF-8 without a BOM. "auto" (or "") takes UTF-8 when the bytes are
// valid UTF-8, Windows-1251 otherwise — the two encodings Russian office software writes.
func DecodeText(raw []byte, enc string) ([]byte, error) {
	enc = strings.ToLower(enc)
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if enc == "" || enc == EncodingAuto {
		enc = EncodingUTF8
		if !utf8.Valid(raw) {
			enc = EncodingWindows1251
		}
	}
	switch enc {
	case EncodingWindows1251, "cp1251":
		b, err := charmap.Windows1251.NewDecoder().Bytes(raw)
		if err != nil {
			return nil, fmt.Errorf("error decoding Windows-1251: %w", err)
		}
		return b, nil
	case EncodingUTF8, "utf8":
		if !utf8.Valid(raw) {
			return nil, errors.New("input is not valid UTF-8 (set encoding: windows-1251 if it is a Windows export)")
		}
		return raw, nil
	default:
		return nil, CheckEncoding(enc)
	}
}
