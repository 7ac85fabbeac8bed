package event

import "errors"

// ErrInvalidEnvelope is returned when bytes read from Kafka are not a CloudEvents envelope the hub
// can handle. Callers send such records to the dead-letter topic with the wrapped reason.
var ErrInvalidEnvelope = errors.New("invalid event envelope")
