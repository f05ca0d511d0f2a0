package scenarios

import (
	"testing"
)

// Every built-in scenario, in every profile it belongs to, passes against
// the real in-process fake backends and a proxy that does the right thing.
// This is what keeps the built-in files honest: an expectation no correct
// proxy can meet fails here.
func TestBuiltinsPassWithRealBackends(t *testing.T) {
	ss, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		for _, profile := range s.Profiles {
			t.Run(s.ID+"/"+profile, func(t *testing.T) {
				r := startRealRig(t, s, &tinyProxy{})
				res := r.run(t, s, profile)
				if !res.Passed() {
					t.Errorf("failures:\n%s", res.Summary())
					for _, st := range res.Steps {
						if st.Response != nil {
							t.Logf("step %d sent %q\ngot %q (%s)", st.Step, st.Sent, st.Response.Raw, st.Response.Detail)
						}
					}
				}
			})
		}
	}
}

// net/http's transport deletes a response's Connection header when it holds
// "close", options and all, so an httputil.ReverseProxy that does not keep
// connections alive forwards the fields a backend listed there. The
// scenario catches it, with the fields named.
func TestConnectionListedCatchesNetHTTPDroppingOptions(t *testing.T) {
	s := builtinByID(t, "scenario/hop-by-hop/response-connection-listed")
	r := startRealRig(t, s, &tinyProxy{oneShot: true})
	res := r.run(t, s, "rfc9110")
	want := "step 1: response: expected no header X-Hop-Secret, got \"for the proxy only\"\n" +
		"step 1: response: expected no header X-Other-Hop, got \"also hop-by-hop\""
	if res.Summary() != want {
		t.Errorf("got\n%s\nwant\n%s", res.Summary(), want)
	}
}
