// Package fetch is how connectors reach their input: a local file or an HTTP(S) URL, with
// conditional requests (ETag / If-Modified-Since), bearer or basic auth taken from the environment,
// a per-source rate limit, and errors classified for the runner's back-off — HTTP 5xx, 429 (with
// its Retry-After), timeouts and refused connections wrap connectors.ErrBackoffRetry; everything
// else is permanent. It also turns the bytes of a text file into UTF-8 (BOM, Windows-1251).
package fetch
