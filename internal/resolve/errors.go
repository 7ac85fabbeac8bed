package resolve

import "errors"

// ErrFenced means another consumer moved this partition's offset since this one read it: this
// consumer lost the partition and must stop without applying anything.
var ErrFenced = errors.New("partition offset moved by another consumer")
