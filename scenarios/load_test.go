package scenarios

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// valid is a minimal correct scenario; the table cases below break it one
// way each. Line numbers matter: the cases name them.
const valid = `id: scenario/test/valid
title: A test scenario
level: MUST
source: "seed §Automatic failover"
feature: failover
profiles: [seed]
topology:
  backends:
    - name: a
      mode: refuse
    - name: b
      default: {status: 200}
steps:
  - request: {target: /x}
    expect: {status: 200, backend: b}
  - set_mode: {backend: a, mode: serve}
`

func TestParseValid(t *testing.T) {
	ss, ps := Parse("valid.yaml", []byte(valid))
	if len(ps) > 0 {
		t.Fatalf("problems in a valid file:\n%v", ps)
	}
	if len(ss) != 1 {
		t.Fatalf("got %d scenarios, want 1", len(ss))
	}
	s := ss[0]
	if s.ID != "scenario/test/valid" || s.File != "valid.yaml" || s.Line != 1 {
		t.Errorf("got id %q at %s:%d", s.ID, s.File, s.Line)
	}
	topo := s.Topology()
	if got := strings.Join(topo.Names(), ","); got != "a,b" {
		t.Errorf("backends %s, want a,b", got)
	}
	if topo.Backends[0].Mode != "refuse" || topo.Backends[1].Mode != "serve" {
		t.Errorf("modes %q, %q; want refuse, serve (the default)", topo.Backends[0].Mode, topo.Backends[1].Mode)
	}
	if topo.ConnectTimeout != DefaultConnectTimeout || topo.ReadTimeout != DefaultReadTimeout {
		t.Errorf("timeouts %v/%v, want the defaults", topo.ConnectTimeout, topo.ReadTimeout)
	}
	if got := strings.Join(s.Needs, ","); got != "multi-backend" {
		t.Errorf("needs %q, want multi-backend implied by two backends", got)
	}
	if s.stepLines[0] != 14 || s.stepLines[1] != 16 {
		t.Errorf("step lines %v, want [14 16]", s.stepLines)
	}
}

// A header or backend called like a duration key is not a duration.
func TestParseDurationKeysOnlyWhereTheyAreDurations(t *testing.T) {
	src := edit(t, "expect: {status: 200, backend: b}", "expect: {status: 200, backend: b, response: {equal: {timeout: soon}}}")
	if _, ps := Parse("t.yaml", []byte(src)); len(ps) > 0 {
		t.Errorf("a header named timeout was read as a duration: %v", ps)
	}
	src = edit(t, "expect: {status: 200, backend: b}", "expect: {status: 200, backend: b, by_profile: {seed: {response: {equal: {delay: x}}}}}")
	if _, ps := Parse("t.yaml", []byte(src)); len(ps) > 0 {
		t.Errorf("a header named delay under by_profile was read as a duration: %v", ps)
	}
	src = edit(t, "    expect: {status: 200, backend: b}\n", "    timeout: never\n    expect: {status: 200, backend: b}\n")
	if _, ps := Parse("t.yaml", []byte(src)); len(ps) != 1 || ps[0].Line != 15 {
		t.Errorf("a step timeout was not checked: %v", ps)
	}
}

func TestParseTopologyValues(t *testing.T) {
	src := strings.Replace(valid, "topology:\n", "topology:\n  path_prefix: /api\n  connect_timeout: 250ms\n  read_timeout: 2s\n", 1)
	ss, ps := Parse("t.yaml", []byte(src))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	topo := ss[0].Topology()
	if topo.PathPrefix != "/api" || topo.ConnectTimeout != 250*time.Millisecond || topo.ReadTimeout != 2*time.Second {
		t.Errorf("got prefix %q, timeouts %v/%v", topo.PathPrefix, topo.ConnectTimeout, topo.ReadTimeout)
	}
	if got := strings.Join(ss[0].Needs, ","); got != "path-prefix,multi-backend" {
		t.Errorf("needs %q, want path-prefix,multi-backend", got)
	}
	// The topology is a copy.
	topo.Backends[0].Name = "changed"
	if ss[0].Topology().Backends[0].Name != "a" {
		t.Error("changing a returned topology changed the scenario")
	}
}

// edit replaces old (which must occur in valid) with new.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(valid, old) {
		t.Fatalf("%q is not in the valid scenario", old)
	}
	return strings.Replace(valid, old, new, 1)
}

func TestParseProblems(t *testing.T) {
	cases := []struct {
		name   string
		old    string // replaced in valid by new
		new    string
		line   int
		reason string // a substring of the reason
	}{
		{"unknown top-level field", "feature: failover\n", "feature: failover\nfeatures: [x]\n", 6, `unknown field "features"`},
		{"unknown field in a request", "request: {target: /x}", "request: {target: /x, verb: GET}", 14, `unknown field "verb"`},
		{"unknown field in a behaviour", "default: {status: 200}", "default: {status: 200, colour: red}", 12, `unknown field "colour"`},
		{"wrong type", "default: {status: 200}", "default: {status: ok}", 12, `status: wrong type: want an integer, got string "ok"`},
		{"wrong type for a list", "profiles: [seed]", "profiles: seed", 6, `profiles: wrong type: want a list, got a string`},
		{"missing id", "id: scenario/test/valid\n", "", 1, "missing id"},
		{"bad id", "id: scenario/test/valid", "id: Failover Two", 1, `bad id "Failover Two"`},
		{"missing title", "title: A test scenario\n", "", 1, "missing title"},
		{"bad level", "level: MUST", "level: must", 3, `unknown level "must"`},
		{"unknown profile", "profiles: [seed]", "profiles: [seed, rfc2616]", 6, `unknown profile "rfc2616"`},
		{"unknown need", "feature: failover\n", "feature: failover\nneeds: [failover, teleport]\n", 6, `unknown feature "teleport"`},
		{"unknown backend in expect", "backend: b}", "backend: c}", 15, `unknown backend "c" (topology has a, b)`},
		{"unknown backend in set_mode", "set_mode: {backend: a,", "set_mode: {backend: z,", 16, `unknown backend "z"`},
		{"bad expected status", "expect: {status: 200,", "expect: {status: 700,", 15, `bad status "700"`},
		{"bad status class", "expect: {status: 200,", "expect: {status_in: [502, 5yy],", 15, `bad status "5yy"`},
		{"bad behaviour status", "default: {status: 200}", "default: {status: 42}", 12, "bad status 42"},
		{"trailers without chunked", "default: {status: 200}", "default: {trailers: [{name: X, value: y}]}", 12, "trailers need framing: chunked"},
		{"bad duration", "topology:\n", "topology:\n  connect_timeout: 5q\n", 8, `connect_timeout: bad duration "5q"`},
		{"duration without unit", "topology:\n", "topology:\n  read_timeout: 5\n", 8, `read_timeout: bad duration 5: a number needs a unit`},
		{"bad delay", "default: {status: 200}", "default: {status: 200, delay: soon}", 12, `delay: bad duration "soon"`},
		{"unknown mode", "mode: refuse", "mode: sulk", 10, `unknown mode "sulk"`},
		{"unknown mode in a step", "mode: serve}", "mode: down}", 16, `unknown mode "down"`},
		{"unknown fault", "default: {status: 200}", "default: {fault: explode}", 12, `unknown fault "explode"`},
		{"bad framing", "default: {status: 200}", "default: {framing: gzip}", 12, `unknown framing "gzip"`},
		{"syntax error", "title: A test scenario", "title: [A test", 3, "',' or ']' must be specified"},
		{"duplicate key", "level: MUST\n", "level: MUST\nlevel: MAY\n", 4, `"level" already defined`},
		{"empty step", "  - set_mode: {backend: a, mode: serve}\n", "  - name: nothing\n", 16, "empty step"},
		{"two kinds in a step", "  - set_mode: {backend: a, mode: serve}\n", "  - set_mode: {backend: a, mode: serve}\n    enqueue: {backend: a, behaviours: [{}]}\n", 17, "both set_mode and enqueue"},
		{"expect on an action", "  - set_mode: {backend: a, mode: serve}\n", "  - set_mode: {backend: a, mode: serve}\n    expect: {status: 200}\n", 17, "expect belongs to a request step"},
		{"unknown placeholder", "request: {target: /x}", "request: {target: \"/${host}\"}", 14, "unknown placeholder ${host}"},
		{"placeholder names unknown backend", "request: {target: /x}", "request: {target: \"/${backend.q}\"}", 14, `unknown backend "q"`},
		{"checks nothing", "    expect: {status: 200, backend: b}\n", "", 13, "the scenario checks nothing"},
		{"no request", "  - request: {target: /x}\n    expect: {status: 200, backend: b}\n", "", 13, "no request step"},
		{"status and status_in", "expect: {status: 200,", "expect: {status: 200, status_in: [200],", 15, "exclude each other"},
		{"by_profile of another profile", "expect: {status: 200,", "expect: {by_profile: {rfc9110: {status: 502}},", 15, `unknown profile "rfc9110" (want one of seed)`},
		{"any_of with one branch", "expect: {status: 200,", "expect: {any_of: [{status: 502}],", 15, "at least two alternatives"},
		{"duplicate backend name", "      default: {status: 200}\n", "      default: {status: 200}\n    - name: b\n", 13, `duplicate backend name "b" (first at line 11)`},
		{"no backends", "  backends:\n    - name: a\n      mode: refuse\n    - name: b\n      default: {status: 200}\n", "  path_prefix: /x\n", 7, "missing backends"},
		{"bad path prefix", "topology:\n", "topology:\n  path_prefix: api\n", 8, `bad path_prefix "api"`},
		{"method on the response", "expect: {status: 200,", "expect: {response: {method: GET},", 15, "method belongs to upstream"},
		{"raw with a target", "request: {target: /x}", "request: {target: /x, raw: \"GET / HTTP/1.1\\r\\n\\r\\n\"}", 14, "raw is the whole request"},
		{"bad header name", "request: {target: /x}", "request: {target: /x, headers: [{name: \"a b\", value: c}]}", 14, `bad header name "a b"`},
		{"negative count", "  - set_mode: {backend: a, mode: serve}\n", "  - set_mode: {backend: a, mode: serve}\nfinal: {received: {a: -1}}\n", 17, "bad count -1"},
		{"not a mapping", valid, "- id: x\n", 1, "a scenario is a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := edit(t, tc.old, tc.new)
			ss, ps := Parse("bad.yaml", []byte(src))
			if len(ss) != 0 {
				t.Errorf("a bad file gave %d scenarios", len(ss))
			}
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), ps)
			}
			p := ps[0]
			if p.File != "bad.yaml" || p.Line != tc.line || !strings.Contains(p.Reason, tc.reason) {
				t.Errorf("got %q\nwant bad.yaml:%d: ...%s...", p.String(), tc.line, tc.reason)
			}
		})
	}
}

// Semantic checks report every problem in a file, not just the first.
func TestParseReportsAllSemanticProblems(t *testing.T) {
	src := edit(t, "expect: {status: 200, backend: b}", "expect: {status: 700, backend: c}")
	src = strings.Replace(src, "mode: serve}", "mode: down}", 1)
	src = strings.Replace(src, "level: MUST", "level: OPTIONAL", 1)
	_, ps := Parse("bad.yaml", []byte(src))
	// The bad status is a decoding error and stops the file; fix it to see
	// the semantic ones together.
	if len(ps) != 1 || ps[0].Line != 15 {
		t.Fatalf("got %v, want the decoding error alone at line 15", ps)
	}
	src = strings.Replace(src, "status: 700", "status: 200", 1)
	_, ps = Parse("bad.yaml", []byte(src))
	want := []string{
		`bad.yaml:3: unknown level "OPTIONAL" (want one of MUST, SHOULD, MAY)`,
		`bad.yaml:15: unknown backend "c" (topology has a, b)`,
		`bad.yaml:16: unknown mode "down" (want one of serve, refuse, blackhole)`,
	}
	if got := strings.Split(ps.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", ps.Error(), strings.Join(want, "\n"))
	}
}

func TestLoadFSAggregatesFilesAndDuplicateIDs(t *testing.T) {
	fsys := fstest.MapFS{
		"s/one.yaml":        {Data: []byte(valid)},
		"s/sub/two.yml":     {Data: []byte(valid)}, // same id
		"s/three.yaml":      {Data: []byte(strings.Replace(valid, "mode: refuse", "mode: sulk", 1))},
		"s/notes.txt":       {Data: []byte("not a scenario")},
		"s/.hidden/x.yaml":  {Data: []byte("garbage: [")},
		"s/multi/many.yaml": {Data: []byte(strings.Replace(valid, "scenario/test/valid", "scenario/test/m1", 1) + "---\n" + strings.Replace(valid, "scenario/test/valid", "scenario/test/m2", 1))},
	}
	_, err := LoadFS(fsys, "s")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	want := []string{
		`s/sub/two.yml:1: duplicate id "scenario/test/valid" (first defined at s/one.yaml:1)`,
		`s/three.yaml:10: unknown mode "sulk" (want one of serve, refuse, blackhole)`,
	}
	if ps.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", ps.Error(), strings.Join(want, "\n"))
	}

	delete(fsys, "s/sub/two.yml")
	delete(fsys, "s/three.yaml")
	ss, err := LoadFS(fsys, "s")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, " "); got != "scenario/test/m1 scenario/test/m2 scenario/test/valid" {
		t.Errorf("loaded %s", got)
	}
	if ss[1].Line != 18 {
		t.Errorf("the second document's id is at line %d, want 18", ss[1].Line)
	}
}

func TestLoadEmptyAndMissingFolders(t *testing.T) {
	if _, err := LoadFS(fstest.MapFS{"d/readme.md": {}}, "d"); err == nil || !strings.Contains(err.Error(), "no scenario files") {
		t.Errorf("a folder without scenario files gave %v", err)
	}
	if _, err := LoadDir(t.TempDir() + "/missing"); err == nil {
		t.Error("a missing folder loaded")
	}
}

func TestLoadDirNamesFilesUnderDir(t *testing.T) {
	dir := t.TempDir()
	fsys := fstest.MapFS{"bad.yaml": {Data: []byte("id: scenario/x\nwhat: 1\n")}}
	for name, f := range fsys {
		writeFile(t, dir+"/"+name, f.Data)
	}
	_, err := LoadDir(dir)
	if err == nil || !strings.HasPrefix(err.Error(), dir+"/bad.yaml:2: ") {
		t.Errorf("got %v, want a problem at %s/bad.yaml:2", err, dir)
	}
}

func TestMergeRejectsIDsInTwoSets(t *testing.T) {
	a, _ := Parse("a.yaml", []byte(valid))
	b, _ := Parse("b.yaml", []byte(valid))
	_, err := Merge(a, b)
	if err == nil || err.Error() != `b.yaml:1: duplicate id "scenario/test/valid" (first defined at a.yaml:1)` {
		t.Errorf("got %v", err)
	}
}
