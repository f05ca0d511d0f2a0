package scenarios_test

import (
	"slices"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/scenarios"
)

// scenarios.Features mirrors the conformance.Feature constants (this
// package must not import conformance); a need missing from either list
// would make a scenario run on subjects that lack the feature.
func TestFeaturesMatchConformance(t *testing.T) {
	known := conformance.Features()
	for _, f := range known {
		if !slices.Contains(scenarios.Features, string(f)) {
			t.Errorf("conformance feature %q is missing from scenarios.Features", f)
		}
	}
	if len(scenarios.Features) != len(known) {
		t.Errorf("scenarios.Features has %d entries, conformance %d", len(scenarios.Features), len(known))
	}
	for _, p := range []conformance.Profile{conformance.ProfileSeed, conformance.ProfileRFC9110} {
		if !slices.Contains(scenarios.Profiles, string(p)) {
			t.Errorf("profile %q is missing from scenarios.Profiles", p)
		}
	}
	for _, l := range []conformance.Level{conformance.MUST, conformance.SHOULD, conformance.MAY} {
		if !slices.Contains(scenarios.Levels, string(l)) {
			t.Errorf("level %q is missing from scenarios.Levels", l)
		}
	}
}
