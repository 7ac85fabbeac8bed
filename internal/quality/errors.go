package quality

import "errors"

// ErrUnknownSource is returned for a source the hub holds no figures of.
var ErrUnknownSource = errors.New("unknown source")
