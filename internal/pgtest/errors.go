package pgtest

import "errors"

// ErrBadServerURL means SOCIALHUB_TEST_DATABASE_URL is not a postgres:// URL.
var ErrBadServerURL = errors.New("SOCIALHUB_TEST_DATABASE_URL must be a postgres:// URL")
