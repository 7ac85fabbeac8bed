package quality

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRefreshWaitStretchesWithTheCatalog(t *testing.T) {
	t.Parallel()
	require.Equal(t, 30*time.Second, refreshWait(30*time.Second, 200*time.Millisecond), "a quick refresh keeps the interval")
	require.Equal(t, 160*time.Second, refreshWait(30*time.Second, 8*time.Second), "a slow one takes at most a twentieth of the time")
}
