// Package ci holds the CI gate's scripts; this test runs ci/gate.sh itself.
package ci

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// focus keeps the gate's runs to two specs that httputil passes quickly.
const focus = `^(forward/get-basic|502/all-refused)$`

// gate runs ci/gate.sh for the httputil peer, profile seed, with the given
// expected verdicts (and versions, the content of VERSIONS, if not empty),
// and returns its exit status and output.
func gate(t *testing.T, bin string, verdicts map[string]string, versions string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	if versions != "" {
		if err := os.WriteFile(filepath.Join(dir, "VERSIONS"), []byte(versions), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(map[string]any{"subject": "httputil", "profiles": map[string]any{"seed": verdicts}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "httputil.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "gate.sh", "--bin", bin, "--expected", dir, "--out", t.TempDir(),
		"--profile", "seed", "--focus", focus, "httputil")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("running gate.sh: %v", err)
	}
	return 0, out.String()
}

func TestGate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite through ci/gate.sh")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := filepath.Join(t.TempDir(), "proxyspec")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/proxyspec").CombinedOutput(); err != nil {
		t.Fatalf("building proxyspec: %v\n%s", err, out)
	}

	code, out := gate(t, bin, map[string]string{"forward/get-basic": "passed", "502/all-refused": "passed"}, "")
	if code != 0 || !strings.Contains(out, "no difference from the expected verdicts") {
		t.Fatalf("true verdicts: exit %d, want 0\n%s", code, out)
	}
	if strings.Contains(out, "changed since") {
		t.Errorf("a version change reported with no VERSIONS file\n%s", out)
	}

	// Verdicts written on another Go: named, and not a failure by itself.
	code, out = gate(t, bin, map[string]string{"forward/get-basic": "passed", "502/all-refused": "passed"}, "apache: apache2-bin 2.4.0\nhttputil: go go1.0\n")
	if code != 0 || !strings.Contains(out, "gate: note: httputil changed since the expected verdicts were written: go go1.0 then, go go1.") {
		t.Errorf("a changed version: exit %d, want 0 and a note naming it\n%s", code, out)
	}

	code, out = gate(t, bin, map[string]string{"forward/get-basic": "failed", "502/all-refused": "passed"}, "")
	if code != 1 || !strings.Contains(out, "DIFF httputil (seed) forward/get-basic: expected failed, now PASSES") {
		t.Errorf("a pass expected to fail: exit %d, want 1 with the spec's diff\n%s", code, out)
	}

	code, out = gate(t, bin, map[string]string{"forward/get-basic": "passed", "502/all-refused": "passed", "forward/gone": "failed"}, "")
	if code != 1 || !strings.Contains(out, "DIFF httputil (seed) forward/gone: expected failed; not in this run") {
		t.Errorf("an expected spec the run lacks: exit %d, want 1 naming it\n%s", code, out)
	}
}

func TestGateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--update", "--focus", "x", "httputil"},
		{"--jobs", "3", "httputil"},
		{"--no-such-flag"},
	} {
		cmd := exec.Command("bash", append([]string{"gate.sh", "--bin", "/nonexistent"}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("gate.sh %q: %v, want exit 2\n%s", args, err, out)
		}
	}
	out, err := exec.Command("bash", "gate.sh", "--bin", "/nonexistent", "no-such-peer").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "unknown peer no-such-peer") {
		t.Errorf("an unknown peer: %v, want exit 2 naming it\n%s", err, out)
	}
}

// TestGateMissingPeer runs the gate with a PATH holding only the tools the
// script needs, so that nginx is not installed.
func TestGateMissingPeer(t *testing.T) {
	dir := t.TempDir()
	for _, tool := range []string{"bash", "dirname", "basename", "mkdir", "sed", "tr", "rm"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("no %s", tool)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(require string) (int, string) {
		cmd := exec.Command(filepath.Join(dir, "bash"), "gate.sh", "--bin", "/nonexistent", "nginx")
		cmd.Env = []string{"PATH=" + dir, "PROXYSPEC_REQUIRE_PEERS=" + require}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run(""); code != 0 || !strings.Contains(out, "SKIP peer nginx: nginx is not installed") {
		t.Errorf("missing peer: exit %d, want 0 and a line saying it was skipped\n%s", code, out)
	}
	if code, out := run("1"); code != 2 || !strings.Contains(out, "nginx is not installed, and PROXYSPEC_REQUIRE_PEERS=1") {
		t.Errorf("missing peer with PROXYSPEC_REQUIRE_PEERS=1: exit %d, want 2 saying why\n%s", code, out)
	}
}
