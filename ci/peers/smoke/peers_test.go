package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// binaries names the program each peer's cmd runs, to skip peers that are
// not installed (ci/install-peers.sh installs them all).
var binaries = map[string]string{
	"apache":   "apache2",
	"caddy":    "caddy",
	"haproxy":  "haproxy",
	"lighttpd": "lighttpd",
	"nginx":    "nginx",
	"varnish":  "varnishd",
}

// TestPeersStartForEveryTopologyShape starts every peer the way the command
// subject does, for 0 to 5 backends with and without a path prefix, and
// checks the basics every spec relies on: it accepts, a window of n requests
// reaches each of n backends once, paths outside the prefix never reach a
// backend, and SIGTERM stops it.
func TestPeersStartForEveryTopologyShape(t *testing.T) {
	entries, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join("..", e.Name(), "config.tmpl")); err == nil {
			peers = append(peers, e.Name())
		}
	}
	for name := range binaries {
		if !slices.Contains(peers, name) {
			t.Errorf("ci/peers/%s is missing", name)
		}
	}
	for _, name := range peers {
		t.Run(name, func(t *testing.T) {
			bin, ok := binaries[name]
			if !ok {
				t.Fatalf("ci/peers/%s: add its binary to the binaries table", name)
			}
			if _, err := exec.LookPath(bin); err != nil {
				t.Skipf("%s is not installed (ci/install-peers.sh): %v", bin, err)
			}
			p, err := loadPeer(filepath.Join("..", name))
			if err != nil {
				t.Fatal(err)
			}
			for n := range 6 {
				for _, prefix := range []string{"", "/api"} {
					t.Run(fmt.Sprintf("backends=%d/prefix=%q", n, prefix), func(t *testing.T) {
						checkShape(t, p, n, prefix)
					})
				}
			}
		})
	}
}

func checkShape(t *testing.T, p *peer, n int, prefix string) {
	bs := &backends{}
	defer bs.close()
	tp := topology{prefix: prefix, connect: connectTimeout, readTMO: readTimeout}
	var names []string
	for i := range n {
		name := fmt.Sprintf("be%d", i)
		addr, err := bs.up(name)
		if err != nil {
			t.Fatal(err)
		}
		tp.backends = append(tp.backends, addr)
		names = append(names, name)
	}
	in, err := p.start(tp)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := in.stop(); err != nil {
			t.Errorf("stop: %v\n%s", err, in.out.String())
		}
	}()

	path := "/x"
	if prefix != "" {
		path = prefix + "/x"
	}
	if n == 0 {
		// The seed answers 502; products answer 502 or 503, and lighttpd,
		// which cannot proxy to nothing, 404. Never a success.
		if r := get(in, path); r.err != nil || r.status < 400 {
			t.Errorf("GET %s with no backends: %s, want an error status", path, r)
		}
	} else {
		var got []string
		for range n {
			r := get(in, path)
			if r.err != nil || r.status != 200 {
				t.Fatalf("GET %s: %s\n%s", path, r, in.out.String())
			}
			got = append(got, r.backend)
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("%d requests reached %v, want each of %v once", n, got, names)
		}
	}
	if prefix != "" {
		bs.reset()
		for _, outside := range []string{"/other", prefix + "x"} {
			if r := get(in, outside); r.err != nil || r.status != 404 {
				t.Errorf("GET %s outside prefix %s: %s, want 404", outside, prefix, r)
			}
		}
		if seen := bs.received(); len(seen) > 0 {
			t.Errorf("requests outside the prefix reached backends: %+v", seen)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`nginx -p /d -c /d/f`, []string{"nginx", "-p", "/d", "-c", "/d/f"}},
		{`nginx -g 'daemon off;'`, []string{"nginx", "-g", "daemon off;"}},
		{`a "b c" d\ e "f\"g"`, []string{"a", "b c", "d e", `f"g`}},
		{"a\t ''  b", []string{"a", "", "b"}},
	} {
		got, err := splitArgs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "  ", `a 'b`, `a "b`, `a\`} {
		if got, err := splitArgs(bad); err == nil {
			t.Errorf("splitArgs(%q) = %q, want an error", bad, got)
		}
	}
}
