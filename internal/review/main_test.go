package review_test

import (
	"testing"

	"socialhub/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
