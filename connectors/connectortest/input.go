package connectortest

import (
	"strings"
	"sync"
	"testing"
)

// PerSubtest gives each subtest of the suite its own input, built by Build on first use, so a
// subtest that shrinks or breaks its input (Fixture.Shrink, Fixture.Break) changes nothing another
// one reads, however the suite schedules them. A subtest's own subtests share its input.
type PerSubtest[T any] struct {
	Build func() T

	mu sync.Mutex
	m  map[string]T
}

// Get returns the input of t's top-level suite subtest.
func (p *PerSubtest[T]) Get(t *testing.T) T {
	key := t.Name()
	if parts := strings.SplitN(key, "/", 3); len(parts) >= 2 {
		key = parts[0] + "/" + parts[1]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]T{}
	}
	v, ok := p.m[key]
	if !ok {
		v = p.Build()
		p.m[key] = v
	}
	return v
}
