package scenarios

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestBuiltinsLoad(t *testing.T) {
	ss, err := Builtin()
	if err != nil {
		t.Fatalf("built-in scenarios do not load:\n%v", err)
	}
	if len(ss) < 8 {
		t.Errorf("%d built-in scenarios, want at least 8", len(ss))
	}
	ids := map[string]bool{}
	profiles := map[string]int{}
	for _, s := range ss {
		if ids[s.ID] {
			t.Errorf("duplicate id %s", s.ID)
		}
		ids[s.ID] = true
		if !strings.HasPrefix(s.File, "builtin/") || s.Line == 0 {
			t.Errorf("%s located at %s:%d", s.ID, s.File, s.Line)
		}
		if s.Title == "" || s.Level == "" || s.Source == "" || s.Feature == "" || len(s.Profiles) == 0 {
			t.Errorf("%s has incomplete metadata: %+v", s.ID, s)
		}
		for _, p := range s.Profiles {
			profiles[p]++
		}
		if len(s.Topology().Backends) > 1 && !contains(s.Needs, "multi-backend") {
			t.Errorf("%s has %d backends but does not need multi-backend", s.ID, len(s.Topology().Backends))
		}
	}
	for _, p := range Profiles {
		if profiles[p] == 0 {
			t.Errorf("no built-in scenario in profile %s", p)
		}
	}
}

// The complete example in README.md is a valid scenario, so the
// documentation cannot drift from the schema.
func TestReadmeExampleParses(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("no yaml example in README.md")
	}
	ss, ps := Parse("README.md example", blocks[0][1])
	if len(ps) > 0 {
		t.Fatalf("the README example does not load:\n%v", ps)
	}
	if len(ss) != 1 || ss[0].Steps() < 3 {
		t.Fatalf("the README example should be one complete scenario, got %d", len(ss))
	}
	for _, profile := range ss[0].Profiles {
		r := startRealRig(t, ss[0], &tinyProxy{})
		if res := r.run(t, ss[0], profile); !res.Passed() {
			t.Errorf("the README example fails against a correct proxy in profile %s:\n%s", profile, res.Summary())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
