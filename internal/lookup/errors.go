package lookup

import "errors"

// errBadRequest means the request body fails validation; the response lists the fields.
var errBadRequest = errors.New("invalid request")
