package schemas

import "errors"

// ErrUnknownEntity is returned when asked to validate an entity the profile has no schema for.
var ErrUnknownEntity = errors.New("unknown entity")
