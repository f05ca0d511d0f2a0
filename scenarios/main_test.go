package scenarios

import (
	"testing"

	"go.uber.org/goleak"
)

// The executor starts a writer goroutine per request and the tests start
// servers; none may outlive its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
