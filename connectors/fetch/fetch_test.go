package fetch_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"

	"socialhub/connectors"
	"socialhub/connectors/fetch"
)

func TestReadFileConditional(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Tue, 24 Nov 2026 10:00:00 GMT")
		_, _ = w.Write([]byte("Код;Услуга\n1;Медиация\n"))
	}))
	defer srv.Close()
	f := fetch.New(fetch.Options{RateLimit: -1}, nil)
	ctx := context.Background()
	got, err := f.ReadFile(ctx, "", srv.URL, fetch.Validators{})
	require.NoError(t, err)
	require.False(t, got.NotModified)
	require.Equal(t, `"v1"`, got.Validators.ETag)
	require.Contains(t, string(got.Body), "Медиация")

	again, err := f.ReadFile(ctx, "", srv.URL, got.Validators)
	require.NoError(t, err)
	require.True(t, again.NotModified)
	require.Empty(t, again.Body)
	require.Equal(t, got.Validators, again.Validators)
}

func TestReadFileLocal(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "list.csv")
	require.NoError(t, os.WriteFile(path, []byte("a;b\n"), 0o644))
	got, err := fetch.New(fetch.Options{}, nil).ReadFile(context.Background(), path, "", fetch.Validators{})
	require.NoError(t, err)
	require.Equal(t, "a;b\n", string(got.Body))

	_, err = fetch.New(fetch.Options{MaxBytes: 2}, nil).ReadFile(context.Background(), path, "", fetch.Validators{})
	require.ErrorIs(t, err, fetch.ErrTooLarge)
	_, err = fetch.New(fetch.Options{}, nil).ReadFile(context.Background(), path+".missing", "", fetch.Validators{})
	require.Error(t, err)
	require.NotErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestStatusClassification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status     int
		retryAfter string
		transient  bool
		wait       time.Duration
	}{
		{http.StatusServiceUnavailable, "7", true, 7 * time.Second},
		{http.StatusTooManyRequests, "120", true, 2 * time.Minute},
		{http.StatusBadGateway, "", true, 0},
		{http.StatusNotFound, "", false, 0},
		{http.StatusUnauthorized, "", false, 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte("сервис недоступен"))
		}))
		_, err := fetch.New(fetch.Options{RateLimit: -1}, nil).ReadFile(context.Background(), "", srv.URL, fetch.Validators{})
		srv.Close()
		require.Error(t, err)
		require.Equal(t, tc.transient, isRetry(err), "status %d", tc.status)
		require.Equal(t, tc.wait, fetch.RetryAfterOf(err), "status %d", tc.status)
		require.Contains(t, err.Error(), "сервис недоступен")
	}
}

func isRetry(err error) bool { return errorsIs(err, connectors.ErrBackoffRetry) }

func TestRefusedConnectionIsTransient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := fetch.New(fetch.Options{RateLimit: -1}, nil).ReadFile(context.Background(), "", url, fetch.Validators{})
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
}

func TestTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	_, err := fetch.New(fetch.Options{Timeout: 50 * time.Millisecond, RateLimit: -1}, nil).ReadFile(context.Background(), "", srv.URL, fetch.Validators{})
	require.ErrorIs(t, err, connectors.ErrBackoffRetry)
	require.True(t, fetch.IsTimeout(err))
}

func TestAuthFromEnvironment(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	env := map[string]string{"DEPT_TOKEN": "s3cret", "DEPT_USER": "hub", "DEPT_PASS": "pw"}
	getenv := func(k string) string { return env[k] }

	bearer := fetch.Options{Auth: fetch.Auth{Type: "bearer", TokenEnv: "DEPT_TOKEN"}, RateLimit: -1}
	require.NoError(t, bearer.Validate(getenv))
	_, err := fetch.New(bearer, getenv).ReadFile(context.Background(), "", srv.URL, fetch.Validators{})
	require.NoError(t, err)
	require.Equal(t, "Bearer s3cret", got.Load())

	basic := fetch.Options{Auth: fetch.Auth{Type: "basic", UserEnv: "DEPT_USER", PasswordEnv: "DEPT_PASS"}, RateLimit: -1}
	_, err = fetch.New(basic, getenv).ReadFile(context.Background(), "", srv.URL, fetch.Validators{})
	require.NoError(t, err)
	require.Equal(t, "Basic aHViOnB3", got.Load())

	missing := fetch.Options{Auth: fetch.Auth{Type: "bearer", TokenEnv: "NOT_SET"}}
	require.ErrorContains(t, missing.Validate(getenv), "NOT_SET is not set")
	require.ErrorContains(t, fetch.Options{Auth: fetch.Auth{Type: "digest"}}.Validate(getenv), "auth.type")
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	f := fetch.New(fetch.Options{RateLimit: 20}, nil)
	start := time.Now()
	for range 5 {
		_, err := f.ReadFile(context.Background(), "", srv.URL, fetch.Validators{})
		require.NoError(t, err)
	}
	// Five requests at 20/s with a burst of one take at least four intervals of 50 ms.
	require.GreaterOrEqual(t, time.Since(start), 190*time.Millisecond)
}

func TestDecodeText(t *testing.T) {
	t.Parallel()
	want := "Код;Учреждение\n1;ГБУ ТЦСО «Марьино»\n"
	cp, err := charmap.Windows1251.NewEncoder().String(want)
	require.NoError(t, err)
	for name, tc := range map[string]struct{ in, enc string }{
		"utf-8":          {want, "auto"},
		"utf-8 with BOM": {"\xef\xbb\xbf" + want, ""},
		"windows-1251":   {cp, "auto"},
		"forced cp1251":  {cp, "windows-1251"},
		"explicit utf-8": {want, "utf-8"},
	} {
		got, err := fetch.DecodeText([]byte(tc.in), tc.enc)
		require.NoError(t, err, name)
		require.Equal(t, want, string(got), name)
	}
	_, err = fetch.DecodeText([]byte(cp), "utf-8")
	require.ErrorContains(t, err, "windows-1251")
	require.Error(t, fetch.CheckEncoding("koi8-r"))
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
