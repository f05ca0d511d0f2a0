package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
)

// Ginkgo runs once per process, so `proxyspec run` is tested as a built
// binary, the way users and CI run it: one build, shared by the subtests.
func TestRun(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "proxyspec")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building proxyspec: %v\n%s", err, out)
	}
	t.Run("reference", func(t *testing.T) { testRunReference(t, bin) })
	t.Run("command contract", func(t *testing.T) { testRunThroughCommandContract(t, bin) })
	t.Run("exit status", func(t *testing.T) { testRunExitStatus(t, bin) })
	t.Run("list agrees", func(t *testing.T) { testRunListAgree(t, bin) })
}

// proxyspec runs the built binary and returns its exit status and output.
func proxyspec(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func testRunReference(t *testing.T, bin string) {
	dir := t.TempDir()
	reportPath, junitPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "j.xml")
	code, out := proxyspec(t, bin, "run", "--report-json", reportPath, "--junit-report", junitPath)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	rep, err := conformance.ReadReport(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Subject != "reference" || len(rep.Specs) == 0 || rep.Totals.Passed != len(rep.Specs) {
		t.Errorf("report: subject %q, %d specs, totals %+v", rep.Subject, len(rep.Specs), rep.Totals)
	}
	for _, s := range rep.Specs {
		if !strings.Contains(out, string(s.State)) || !strings.Contains(out, s.ID+" (") {
			t.Errorf("no progress line for %s:\n%s", s.ID, out)
		}
	}
	if !strings.Contains(out, "verdict: PASS") || strings.Contains(out, "Ran ") {
		t.Errorf("output: want our summary and no Ginkgo summary:\n%s", out)
	}
	junit, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(junit), "<testcase "); n != len(rep.Specs) {
		t.Errorf("junit has %d test cases, want %d", n, len(rep.Specs))
	}
}

func testRunThroughCommandContract(t *testing.T, bin string) {
	if _, ok := commands["proxy"]; !ok {
		t.Skip("the proxy subcommand has not landed")
	}
	code, out := proxyspec(t, bin, "run", "--subject-cmd", bin+" proxy", "--subject-name", "reference-cmd")
	if code != 0 || !strings.Contains(out, "reference-cmd, profile seed") {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
}

func testRunExitStatus(t *testing.T, bin string) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"subject exits at once", []string{"run", "--subject-cmd", `sh -c 'echo cannot bind >&2; exit 1'`, "--label-filter", "forward"}, 2, "cannot bind"},
		{"unknown profile", []string{"run", "--profile", "nginx"}, 2, `unknown profile "nginx"`},
		{"unknown feature", []string{"run", "--subject-lacks", "failover,teleport"}, 2, `unknown feature "teleport"`},
		{"bad label filter", []string{"run", "--label-filter", "a &&"}, 2, "label filter"},
		{"exclusive subjects", []string{"run", "--subject-cmd", "x", "--subject-image", "y"}, 2, "exclusive"},
		{"config without command", []string{"run", "--subject-config", "x.tmpl"}, 2, "needs --subject-cmd"},
		{"container subject, in-process backends", []string{"run", "--subject-image", "self", "--backends", "inprocess"}, 2, "needs --backends containers"},
		{"a lacked feature is not a failure", []string{"run", "--subject-lacks", "failover", "--label-filter", "failover"}, 0, "not-supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := proxyspec(t, bin, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d (want %d), output lacks %q?\n%s", code, c.code, c.want, out)
			}
		})
	}
}

func testRunListAgree(t *testing.T, bin string) {
	dir := t.TempDir()
	report := filepath.Join(dir, "r.json")
	// Only the set of specs matters here, not the verdict.
	if code, out := proxyspec(t, bin, "run", "--profile", "rfc9110", "--report-json", report); code != 0 && code != 1 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	rep, err := conformance.ReadReport(report)
	if err != nil {
		t.Fatal(err)
	}
	_, listed := proxyspec(t, bin, "list", "--json", "--profile", "rfc9110")
	var metas []conformance.Meta
	if err := json.Unmarshal([]byte(listed), &metas); err != nil {
		t.Fatal(err)
	}
	if len(metas) != len(rep.Specs) {
		t.Errorf("list shows %d rfc9110 specs, run ran %d", len(metas), len(rep.Specs))
	}
}
