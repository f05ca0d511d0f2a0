package container

import (
	"strings"
	"testing"
)

func TestBuildOutcome(t *testing.T) {
	ok := `{"stream":"Step 1/3 : FROM scratch\n"}
{"stream":"Successfully built 0123\n"}
{"aux":{"ID":"sha256:0123"}}
`
	if err := buildOutcome(strings.NewReader(ok)); err != nil {
		t.Errorf("a successful build: %v", err)
	}
	failed := `{"stream":"Step 2/3 : COPY proxyspec /proxyspec\n"}
{"errorDetail":{"message":"COPY failed: file not found"},"error":"COPY failed: file not found"}
`
	if err := buildOutcome(strings.NewReader(failed)); err == nil || err.Error() != "COPY failed: file not found" {
		t.Errorf("a failed build: %v, want the engine's message", err)
	}
	if err := buildOutcome(strings.NewReader(`{"stream":`)); err == nil {
		t.Error("a truncated stream passed for a successful build")
	}
}

func TestGoArch(t *testing.T) {
	for machine, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390x", "": "fallback"} {
		if got := goArch(machine, "fallback"); got != want {
			t.Errorf("goArch(%q) = %q, want %q", machine, got, want)
		}
	}
}
