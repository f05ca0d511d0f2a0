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

	"github.com/proxyspec/proxyspec/bench"
)

// TestBenchSmoke runs `proxyspec bench` as users do, built, with tiny
// durations and bodies, so that the command cannot rot: the reference and
// direct are loaded, the fake backend compared, the memory figures taken,
// a peer missing from PATH reported as skipped, and the JSON written.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "proxyspec")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building proxyspec: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "bench.json")
	cmd := exec.Command(bin, "bench", "--duration", "300ms", "--warmup", "0", "--rounds", "1", "--workers", "4",
		"--only", "direct,reference,nginx", "--body-size", "4194304", "--idle-conns", "20", "--out", out)
	// An empty PATH: the peers cannot be found, whether installed or not.
	cmd.Env = append(os.Environ(), "PATH="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", ee.ExitCode(), &stdout, &stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stdout:\n%s", &stdout)

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("--out: %v", err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want direct, reference, nginx: %+v", len(rep.Results), rep.Results)
	}
	for _, r := range rep.Results[:2] {
		if r.Skipped != "" || r.Requests == 0 || r.Errors != 0 || r.Rate <= 0 || r.P50 <= 0 || r.P99 < r.P50 || len(r.Round) != 1 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if ref := rep.Results[1]; ref.Name != bench.Reference || ref.Ratio != 1 || ref.PeakRSS <= 0 {
		t.Errorf("reference: ratio %v, peak RSS %d; want 1 and a measured RSS", ref.Ratio, ref.PeakRSS)
	}
	if d := rep.Results[0]; d.Name != bench.Direct || d.PeakRSS != 0 || d.Ratio <= 0 {
		t.Errorf("direct: %+v", d)
	}
	if ng := rep.Results[2]; !strings.Contains(ng.Skipped, "not installed") {
		t.Errorf("nginx off PATH: skipped %q, want not installed", ng.Skipped)
	}
	if !strings.Contains(stderr.String(), "nginx") || !strings.Contains(stderr.String(), "skipped") {
		t.Errorf("no skip line on stderr:\n%s", &stderr)
	}
	if fb := rep.FakeBackend; fb == nil || fb.Ratio <= 0 || fb.NetHTTPRate <= 0 {
		t.Errorf("fake backend comparison: %+v", fb)
	}
	m := rep.Memory
	if m == nil {
		t.Fatal("no memory figures")
	}
	if m.Upload.Bytes != 4<<20 || m.Download.Bytes != 4<<20 || m.Upload.PeakRSS < m.StartRSS || m.Download.PeakRSS <= 0 {
		t.Errorf("body memory: %+v", m)
	}
	if m.Idle.Conns != 20 || m.Idle.RSS <= 0 {
		t.Errorf("idle memory: %+v", m.Idle)
	}
	for _, want := range []string{"implementation", "reference", "direct", "skipped", "idle client connections"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}
