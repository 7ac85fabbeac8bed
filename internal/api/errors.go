package api

import "errors"

// errBadQuery means query parameters failed validation; the response lists the fields.
var errBadQuery = errors.New("invalid query parameters")
