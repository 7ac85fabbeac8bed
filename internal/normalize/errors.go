package normalize

import "errors"

// ErrSNILS is wrapped by every error SNILS returns, so callers can tell a bad national id from
// other failures with errors.Is; the message says what exactly is wrong.
var ErrSNILS = errors.New("invalid СНИЛС")
