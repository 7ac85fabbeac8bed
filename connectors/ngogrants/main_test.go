package ngogrants_test

import (
	"testing"

	"socialhub/internal/pgtest"
)

// TestMain: the shared acceptance suite runs sources through the real Runner on a test database.
func TestMain(m *testing.M) { pgtest.Main(m) }
