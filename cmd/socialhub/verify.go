package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"socialhub/internal/attest"
)

const verifyUsage = `Usage:
  socialhub verify [-jwks URL|FILE] [-issuer ISS] [-audience CLIENT] ATTESTATION|-

Verifies an attestation offline against a JWKS (by default the hub's /.well-known/jwks.json at
the configured http.addr): signature, expiry, and issuer and audience when given. Prints its
claims; exits non-zero when it does not verify. "-" reads the attestation from standard input.
`

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return verifyAttestation(ctx, args, os.Stdin, stdout, stderr, getenv)
}

func verifyAttestation(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("socialhub verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage, "\nFlags:\n"); fs.PrintDefaults() }
	var c commonFlags
	c.register(fs)
	jwks := fs.String("jwks", "", "JWKS URL or file (default http://<http.addr>/.well-known/jwks.json)")
	issuer := fs.String("issuer", "", "require this issuer")
	audience := fs.String("audience", "", "require this audience (client id)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"verify: give exactly one attestation (or - for standard input)"}
	}
	token := fs.Arg(0)
	if token == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return fmt.Errorf("error reading the attestation: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	source := *jwks
	if source == "" {
		cfg, err := c.load(getenv)
		if err != nil {
			return err
		}
		source = "http://" + cfg.HTTP.Addr + "/.well-known/jwks.json"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	set, err := attest.LoadJWKS(ctx, source, nil)
	if err != nil {
		return err
	}
	claims, err := attest.Verify(token, set, attest.VerifyOptions{Issuer: *issuer, Audience: *audience})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "attestation valid")
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(claims)
}
