package attest

import "errors"

var (
	// ErrInvalid means an attestation does not verify: malformed, signed by an unknown key, a bad
	// signature, expired, or for another issuer or audience. The message says which.
	ErrInvalid = errors.New("invalid attestation")

	// ErrMasterKey means the master key is missing or malformed.
	ErrMasterKey = errors.New("attestation master key")

	// ErrNoKey means no signing key exists yet (call Ensure).
	ErrNoKey = errors.New("no attestation signing key")
)
