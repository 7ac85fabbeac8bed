package pseudonym

import "errors"

// ErrKey is wrapped by every error about the key: missing, too short, not hex or base64.
var ErrKey = errors.New("bad pseudonym key")
