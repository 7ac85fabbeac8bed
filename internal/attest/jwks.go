package attest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKS bounds what LoadJWKS reads: a key set is a few kilobytes.
const maxJWKS = 1 << 20

// LoadJWKS reads a JWKS from an http(s) URL or a file, for verifying attestations offline.
func LoadJWKS(ctx context.Context, source string, client *http.Client) (jose.JSONWebKeySet, error) {
	var b []byte
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		if client == nil {
			client = http.DefaultClient
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
		if err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("error fetching the JWKS: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("error fetching the JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return jose.JSONWebKeySet{}, fmt.Errorf("error fetching the JWKS from %s: %s", source, resp.Status)
		}
		if b, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKS)); err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("error fetching the JWKS: %w", err)
		}
	} else {
		var err error
		if b, err = os.ReadFile(source); err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("error reading the JWKS: %w", err)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("error reading the JWKS from %s: %w", source, err)
	}
	return set, nil
}
