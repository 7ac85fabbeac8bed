package eligibility

import "errors"

var (
	// ErrNotFound means no resident has the requested pseudonym.
	ErrNotFound = errors.New("resident not found")

	// ErrInvalidRecord means a record cannot enter the store as it is (no source, a pseudonym that
	// is not 64 lowercase hex digits, facts that are not a JSON object, an unknown op). Retrying it
	// does not help: it belongs in the dead-letter topic.
	ErrInvalidRecord = errors.New("invalid resident record")
)

// ErrInvalidRules means an eligibility rules file does not load: the message lists every problem
// with its file, rule and, for an expression, the position.
var ErrInvalidRules = errors.New("invalid eligibility rules")
