package proxy

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test in this package, fuzz targets' seed corpora included, must
// leave no goroutine behind: a proxy that leaks one per failed attempt or
// per aborted client runs out of memory in production, not in a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
