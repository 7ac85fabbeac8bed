package schemas

import "errors"

// ErrUnknownEntity is returned when asked to validate an entity the profile has no schema for.
var ErrUnknownEntity = errors.New("unknown entity")

// ErrUnknownSchema is returned for a $id or a version the profile does not have.
var ErrUnknownSchema = errors.New("unknown schema")
