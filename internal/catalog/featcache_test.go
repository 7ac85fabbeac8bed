package catalog

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestFeatureCacheDecodesOncePerStoredBytes(t *testing.T) {
	t.Parallel()
	fc := newFeatureCache()
	id := uuid.New()
	f, err := fc.decode(id, []byte(`{"type": "organization", "name": ["centr", "zabota"], "ids": ["inn:7701234567"]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"centr", "zabota"}, f.Name)

	again, err := fc.decode(id, []byte(`{"type": "organization", "name": ["centr", "zabota"], "ids": ["inn:7701234567"]}`))
	require.NoError(t, err)
	require.Equal(t, f, again)

	changed, err := fc.decode(id, []byte(`{"type": "organization", "name": ["opora"]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"opora"}, changed.Name, "new stored bytes are decoded afresh")
	require.Empty(t, changed.IDs)

	_, err = fc.decode(uuid.New(), []byte(`{"type": `))
	require.Error(t, err)
}
