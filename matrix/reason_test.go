package matrix

import (
	"strings"
	"testing"
)

func TestReason(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"status the client got\nExpected\n    <int>: 502\nto equal\n    <int>: 200",
			"status the client got: got 502, expected to equal 200"},
		{"the backend's X-Hop-Option reached the client\nExpected\n    <[]string | len:1, cap:1>: [\"secret\"]\nto be empty",
			`the backend's X-Hop-Option reached the client: got ["secret"], expected to be empty`},
		{"Expected\n    <bool>: false\nto be true", "got false, expected to be true"},
		{"Via members\nExpected\n    <[]string | len:2>: [\n        \"1.1 a\",\n        \"1.1 b\",\n    ]\nto have length 3",
			`Via members: got [ "1.1 a", "1.1 b", ], expected to have length 3`},
		{"scenario scenario/x (builtin/x.yaml:1):\nstep 1: response: expected no header X-A, got \"1\"\nstep 1: response: expected no header X-B, got \"2\"",
			`step 1: response: expected no header X-A, got "1" (+1 more)`},
		{"scenario scenario/x (builtin/x.yaml:1):\nstep 2: status 503, want 502", "step 2: status 503, want 502"},
		{"subject nginx did not start: exit status 1\nnginx: [emerg] bad directive", "subject nginx did not start: exit status 1"},
		{"  \n", ""},
	} {
		if got := Reason(c.in); got != c.want {
			t.Errorf("Reason(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
	long := Reason(strings.Repeat("x", 500))
	if n := len([]rune(long)); n != reasonLimit || !strings.HasSuffix(long, "…") {
		t.Errorf("a 500-rune reason is %d runes (%q...), want %d ending in …", n, long[:10], reasonLimit)
	}
}
