package match_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/match"
)

func TestFeaturesEqualAfterStoring(t *testing.T) {
	t.Parallel()
	f := match.ServiceFeatures("dszn", "org-1", []string{}, map[string]any{
		"name": "Семейная медиация", "phones": []any{map[string]any{"number": "+7 (495) 123-45-67"}},
	})
	raw, err := json.Marshal(&f)
	require.NoError(t, err)
	var stored match.Features
	require.NoError(t, json.Unmarshal(raw, &stored))
	require.True(t, stored.Equal(&f), "an empty list is stored as none")

	other := f
	other.Name = append([]string{"drugaia"}, f.Name[1:]...)
	require.False(t, stored.Equal(&other))
	other = f
	other.Org = "org-2"
	require.False(t, stored.Equal(&other))
}
