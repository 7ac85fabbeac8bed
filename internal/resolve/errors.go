package resolve

import "errors"

// ErrFenced means another consumer moved this partition's offset since this one read it: this
// consumer lost the partition and must stop without applying anything.
var ErrFenced = errors.New("partition offset moved by another consumer")

// ErrNoEligibilityStore means a resident record reached a stage built without an eligibility
// store. The record goes to dlq with this reason rather than block its partition; replay it once
// the stage is configured.
var ErrNoEligibilityStore = errors.New("no eligibility store configured for resident records")

// ErrNoCaseStore means an application_event record reached a stage built without the cases store;
// like a resident without an eligibility store, it goes to dlq and can be replayed.
var ErrNoCaseStore = errors.New("no cases store configured for application events")
