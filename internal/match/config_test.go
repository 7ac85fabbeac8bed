package match_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"socialhub/internal/match"
)

func TestTrustOf(t *testing.T) {
	t.Parallel()
	cfg := match.DefaultConfig()
	cfg.Trust = match.TrustByKind(map[string]string{"dszn": "csv", "fpg": "ngogrants"}, nil)
	ngo := match.TrustByKind(map[string]string{"x": "httpjson"}, nil)["x"]
	cfg.TrustPrefixes = map[string]int{"ngo-": ngo}
	require.Less(t, cfg.TrustOf("dszn"), cfg.TrustOf("ngo-4f1c"), "a department over an NGO's own listing")
	require.Less(t, cfg.TrustOf("ngo-4f1c"), cfg.TrustOf("fpg"), "an NGO's own listing over a grant list")
	require.Equal(t, cfg.DefaultTrust, cfg.TrustOf("unknown"))
}
