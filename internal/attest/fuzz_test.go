package attest_test

import (
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"socialhub/internal/attest"
)

// FuzzVerify feeds offline verification arbitrary tokens: it never panics and refuses every one
// with ErrInvalid (no key set can vouch for a made-up token).
func FuzzVerify(f *testing.F) {
	f.Add("eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln")
	f.Add("a.b.c")
	f.Add("")
	f.Add("{\"payload\":\"e30\",\"signatures\":[]}")
	f.Fuzz(func(t *testing.T, token string) {
		_, err := attest.Verify(token, jose.JSONWebKeySet{}, attest.VerifyOptions{})
		if err == nil {
			t.Fatalf("a token verified against an empty key set: %q", token)
		}
		if !errors.Is(err, attest.ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
	})
}
