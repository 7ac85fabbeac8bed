package catalog

import (
	"encoding/json"
	"sync"

	"github.com/google/uuid"

	"socialhub/internal/match"
)

// featureCacheSize bounds the decoded features kept between batches (a few hundred bytes each).
const featureCacheSize = 1 << 18

// featureCache keeps the decoded match features of stored members, so that the candidates dense
// blocking keys bring again and again are decoded once, not once per batch: at 100 000 listings
// decoding candidates' features was an eighth of the hub's CPU. An entry is used only while the
// stored bytes are the ones it was decoded from, so a member whose features changed is decoded
// afresh. Decoded features are shared read-only: scoring never changes them.
type featureCache struct {
	mu      sync.Mutex
	entries map[uuid.UUID]cachedFeatures
}

type cachedFeatures struct {
	raw      string
	features match.Features
}

func newFeatureCache() *featureCache {
	return &featureCache{entries: map[uuid.UUID]cachedFeatures{}}
}

// decode returns the features stored as raw for member id.
func (fc *featureCache) decode(id uuid.UUID, raw []byte) (match.Features, error) {
	fc.mu.Lock()
	e, ok := fc.entries[id]
	fc.mu.Unlock()
	if ok && e.raw == string(raw) {
		return e.features, nil
	}
	var f match.Features
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, err
	}
	fc.mu.Lock()
	if len(fc.entries) >= featureCacheSize {
		clear(fc.entries) // simpler than an LRU, and the hot candidates come back at once
	}
	fc.entries[id] = cachedFeatures{raw: string(raw), features: f}
	fc.mu.Unlock()
	return f, nil
}
