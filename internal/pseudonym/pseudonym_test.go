package pseudonym_test

import (
	"encoding/base64"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/normalize"
	"socialhub/internal/pseudonym"
)

// key is bytes 0x00..0x1f; want is HMAC-SHA256(key, "11223344595") computed independently
// (Python's hmac module).
var key = func() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

const want = "c88ffd2e9f485568868419bee4f3e33fc765cad7530a16bcfff857a6f181bde0"

func env(v string) func(string) string {
	return func(name string) string {
		if name == pseudonym.EnvKey {
			return v
		}
		return ""
	}
}

func TestPseudonym(t *testing.T) {
	t.Parallel()
	p, err := pseudonym.New(key)
	require.NoError(t, err)
	for _, in := range []string{"112-233-445 95", "11223344595", "112\u00a0233\u00a0445\u00a095"} {
		got, err := p.Pseudonym(in)
		require.NoError(t, err)
		require.Equal(t, want, got, "every written form of one number gives one pseudonym")
	}
	other, err := p.Pseudonym("412-402-211 99")
	require.NoError(t, err)
	require.NotEqual(t, want, other)
	require.Len(t, other, 64)

	_, err = p.Pseudonym("112-233-445 96")
	require.ErrorIs(t, err, normalize.ErrSNILS)
	require.NotContains(t, err.Error(), "112", "the error does not repeat the number")

	k2 := append([]byte(nil), key...)
	k2[0] = 1
	p2, err := pseudonym.New(k2)
	require.NoError(t, err)
	got2, err := p2.Pseudonym("11223344595")
	require.NoError(t, err)
	require.NotEqual(t, want, got2, "another key, another pseudonym")
}

func TestNewCopiesKey(t *testing.T) {
	t.Parallel()
	k := append([]byte(nil), key...)
	p, err := pseudonym.New(k)
	require.NoError(t, err)
	k[0] = 0xff
	got, err := p.Pseudonym("11223344595")
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestShortKey(t *testing.T) {
	t.Parallel()
	_, err := pseudonym.New(key[:31])
	require.ErrorIs(t, err, pseudonym.ErrKey)
	require.ErrorContains(t, err, "31 bytes, want at least 32")
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]string{
		"hex":            hex.EncodeToString(key),
		"hex upper":      "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"base64":         base64.StdEncoding.EncodeToString(key),
		"base64 raw url": base64.RawURLEncoding.EncodeToString(key),
		"with newline":   hex.EncodeToString(key) + "\n",
	} {
		p, err := pseudonym.FromEnv(env(v))
		require.NoError(t, err, name)
		got, err := p.Pseudonym("11223344595")
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}
	for name, tc := range map[string]struct{ v, msg string }{
		"missing":   {"", "SOCIALHUB_PSEUDONYM_KEY is not set"},
		"short hex": {hex.EncodeToString(key[:16]), "SOCIALHUB_PSEUDONYM_KEY holds 16 bytes, want at least 32"},
		"not a key": {"пароль!", "SOCIALHUB_PSEUDONYM_KEY: the value is neither hex nor base64"},
		"short b64": {base64.StdEncoding.EncodeToString(key[:20]), "holds 20 bytes"},
	} {
		_, err := pseudonym.FromEnv(env(tc.v))
		require.ErrorIs(t, err, pseudonym.ErrKey, name)
		require.ErrorContains(t, err, tc.msg, name)
	}
	_, err := pseudonym.FromEnv(nil)
	require.ErrorContains(t, err, pseudonym.EnvKey)
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	p, err := pseudonym.New(key)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				got, err := p.Pseudonym("11223344595")
				if err != nil || got != want {
					errs <- got
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.Empty(t, errs)
}

func BenchmarkPseudonym(b *testing.B) {
	p, err := pseudonym.New(key)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Pseudonym("112-233-445 95"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
