package selftest

import (
	"os"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/reference"
)

// TestReferenceSeed runs the whole seed profile against the reference proxy:
// the reference must pass every spec it is measured by.
func TestReferenceSeed(t *testing.T) {
	conformance.Test(t, conformance.Config{
		Subject:     reference.Subject(nil),
		Profile:     conformance.ProfileSeed,
		LabelFilter: os.Getenv("PROXYSPEC_LABEL_FILTER"),
	})
}
