package matrix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
)

func readFixture(t *testing.T) (Expected, conformance.Report) {
	t.Helper()
	r, err := conformance.ReadReport("testdata/nginx-seed.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := ReadExpected("testdata/expected", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	return e, r
}

func TestCompareMatchingFixture(t *testing.T) {
	e, r := readFixture(t)
	if ds := Compare(e, r); len(ds) != 0 {
		t.Errorf("the fixture matches its expected file, yet Compare = %v", ds)
	}
}

// TestCompareTampered edits one expectation at a time, the way a wrong
// expected file would, and checks that each one is reported.
func TestCompareTampered(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper func(states map[string]conformance.State)
		want   string
	}{
		{"newly fails", func(s map[string]conformance.State) { s["502/no-backends"] = conformance.StatePassed },
			"nginx (seed) 502/no-backends: expected passed, got FAILED — media type of the 502: got text/html, expected to equal text/plain"},
		{"newly passes", func(s map[string]conformance.State) { s["forward/get-basic"] = conformance.StateFailed },
			"nginx (seed) forward/get-basic: expected failed, now PASSES"},
		{"lack no longer declared", func(s map[string]conformance.State) { s["forwarded/via/added"] = conformance.StateFailed },
			"nginx (seed) forwarded/via/added: expected failed, got NOT-SUPPORTED — the subject lacks via"},
		{"new spec", func(s map[string]conformance.State) { delete(s, "hop-by-hop/request/connection") },
			"nginx (seed) hop-by-hop/request/connection: new spec, no expectation; got passed"},
		{"spec gone", func(s map[string]conformance.State) { s["old/spec"] = conformance.StatePassed },
			"nginx (seed) old/spec: expected passed; not in this run (renamed, removed or filtered out?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, r := readFixture(t)
			c.tamper(e.Profiles[conformance.ProfileSeed])
			ds := Compare(e, r)
			if len(ds) != 1 || ds[0].String() != c.want {
				t.Errorf("Compare = %q, want [%q]", ds, c.want)
			}
		})
	}
}

func TestCompareWithoutExpectations(t *testing.T) {
	_, r := readFixture(t)
	e, err := ReadExpected(t.TempDir(), "nginx")
	if err != nil {
		t.Fatalf("a missing file must read as empty: %v", err)
	}
	if ds := Compare(e, r); len(ds) != len(r.Specs) {
		t.Errorf("with no expected file, %d differences, want one per spec (%d)", len(ds), len(r.Specs))
	}
}

func TestCompareSuiteFailure(t *testing.T) {
	e, r := readFixture(t)
	r.SuiteFailures = []string{"interrupted by the user"}
	ds := Compare(e, r)
	if len(ds) != 1 || !strings.Contains(ds[0].String(), "failure outside the specs — interrupted by the user") {
		t.Errorf("Compare = %q, want the suite failure", ds)
	}
}

func TestExpectedRoundTripKeepsOtherProfiles(t *testing.T) {
	e, r := readFixture(t)
	r.Specs[1].State = conformance.StateFailed
	e.Set(r)
	dir := t.TempDir()
	if err := e.WriteFile(dir); err != nil {
		t.Fatal(err)
	}
	back, err := ReadExpected(dir, "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Profiles[conformance.ProfileSeed]["forward/get-basic"]; got != conformance.StateFailed {
		t.Errorf("seed forward/get-basic after Set and a round trip = %q, want failed", got)
	}
	if got := back.Profiles[conformance.ProfileRFC9110]["forward/get-basic"]; got != conformance.StatePassed {
		t.Errorf("rfc9110 forward/get-basic = %q: a seed report must not touch rfc9110", got)
	}
	if ds := Compare(back, r); len(ds) != 0 {
		t.Errorf("a report compared with the verdicts it set: %v", ds)
	}
}

func TestExpectedFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadExpected(dir, "../etc/passwd"); err == nil {
		t.Error("a subject name with a path was accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "caddy.json"), []byte(`{"subject":"nginx","profiles":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExpected(dir, "caddy"); err == nil || !strings.Contains(err.Error(), `"nginx"`) {
		t.Errorf("a file for another subject: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExpected(dir, "bad"); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("a broken file: err = %v, want one naming it", err)
	}
}

// An unstable expectation accepts passed and failed, and nothing else; an
// update keeps it while the spec stays within those two states.
func TestUnstableExpectation(t *testing.T) {
	e, r := readFixture(t)
	states := e.Profiles[r.Profile]
	var passed, failed string
	for _, s := range r.Specs {
		switch {
		case s.State == conformance.StatePassed && passed == "":
			passed = s.ID
		case s.State == conformance.StateFailed && failed == "":
			failed = s.ID
		}
	}
	if passed == "" || failed == "" {
		t.Fatal("the fixture needs a passed and a failed spec")
	}
	states[passed], states[failed] = Unstable, Unstable
	if ds := Compare(e, r); len(ds) != 0 {
		t.Errorf("unstable specs that passed and failed, yet Compare = %v", ds)
	}
	for i := range r.Specs {
		if r.Specs[i].ID == passed {
			r.Specs[i].State = conformance.StateNotSupported
		}
	}
	if ds := Compare(e, r); len(ds) != 1 || ds[0].ID != passed {
		t.Errorf("an unstable spec now not supported: Compare = %v, want one difference for %s", ds, passed)
	}
	e.Set(r)
	if got := e.Profiles[r.Profile]; got[failed] != Unstable || got[passed] != conformance.StateNotSupported {
		t.Errorf("after update: %s is %q (want unstable kept), %s is %q (want not-supported)", failed, got[failed], passed, got[passed])
	}
}
