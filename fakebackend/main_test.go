package fakebackend_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test in this package, in-process servers included, must leave no
// goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
