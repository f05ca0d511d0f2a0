package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	fixtureReport   = "../../matrix/testdata/nginx-seed.json"
	fixtureExpected = "../../matrix/testdata/expected"
)

func report(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := reportCmd(context.Background(), args, &out, &errs)
	return code, out.String(), errs.String()
}

func TestReportWritesMatrices(t *testing.T) {
	dir := t.TempDir()
	md, html := filepath.Join(dir, "m.md"), filepath.Join(dir, "m.html")
	code, out, errs := report(t, "--markdown", md, "--html", html, fixtureReport)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "nginx           seed     2       1       1") {
		t.Errorf("summary lacks nginx's totals:\n%s", out)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| `502/no-backends` | MUST | seed §502 Bad Gateway | ❌ |") {
		t.Errorf("Markdown lacks the failing row:\n%s", b)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "media type of the 502: got text/html") {
		t.Errorf("HTML lacks the failure's reason (err %v)", err)
	}
}

func TestReportCheck(t *testing.T) {
	if code, out, errs := report(t, "--expected", fixtureExpected, "--check", fixtureReport); code != 0 {
		t.Errorf("matching verdicts: exit %d, want 0\n%s%s", code, out, errs)
	}

	tampered := t.TempDir()
	b, err := os.ReadFile(filepath.Join(fixtureExpected, "nginx.json"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(b), `"502/no-backends": "failed"`, `"502/no-backends": "passed"`, 1)
	if wrong == string(b) {
		t.Fatal("the fixture no longer has the line this test tampers with")
	}
	if err := os.WriteFile(filepath.Join(tampered, "nginx.json"), []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := report(t, "--expected", tampered, "--check", fixtureReport)
	if code != 1 || !strings.Contains(out, "DIFF nginx (seed) 502/no-backends: expected passed, got FAILED") {
		t.Errorf("tampered verdicts: exit %d, want 1 with the spec's diff:\n%s", code, out)
	}

	code, out, _ = report(t, "--expected", t.TempDir(), "--check", fixtureReport)
	if code != 1 || !strings.Contains(out, "no expected verdicts in") {
		t.Errorf("no expected file: exit %d, want 1 saying so:\n%s", code, out)
	}
}

func TestReportUpdate(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := report(t, "--expected", dir, "--update", fixtureReport)
	if code != 0 || !strings.Contains(out, "nginx.json: 4 change(s)") {
		t.Fatalf("update: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := report(t, "--expected", dir, "--check", fixtureReport); code != 0 {
		t.Errorf("check after update: exit %d\n%s", code, out)
	}
}

func TestReportUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--check", fixtureReport},
		{"--expected", "x", fixtureReport},
		{"--expected", "x", "--check", "--update", fixtureReport},
		{"no-such-report.json"},
		{fixtureReport, fixtureReport},
	} {
		if code, _, _ := report(t, args...); code != 2 {
			t.Errorf("report %q: exit %d, want 2", args, code)
		}
	}
}
