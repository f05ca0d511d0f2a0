package bench

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {.5, 50}, {.99, 99}, {1, 100}} {
		if got := quantile(ds, tc.q); got != tc.want {
			t.Errorf("quantile(1..100, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, .5); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
}

func TestSelected(t *testing.T) {
	all, err := selected(nil)
	if err != nil || len(all) != len(ImplementationNames()) || all[0].name != Direct {
		t.Fatalf("selected(nil): %d, %v", len(all), err)
	}
	some, err := selected([]string{"nginx", Reference})
	if err != nil || len(some) != 2 || some[0].name != "nginx" || some[1].name != Reference {
		t.Errorf("selected in the order asked: %v", err)
	}
	if _, err := selected([]string{"nginx", "varnish"}); err == nil || !strings.Contains(err.Error(), `"varnish"`) {
		t.Errorf("unknown implementation: %v", err)
	}
}

// The peer configs must be accepted by the peers themselves: nginx -t and
// haproxy -c check a config without serving it.
func TestPeerConfigsValid(t *testing.T) {
	e := &env{backends: []string{"127.0.0.1:1", "127.0.0.1:2"}, dir: t.TempDir()}
	for _, tc := range []struct {
		bin, tmpl string
		check     func(dir, file string) []string
	}{
		{"nginx", "nginx.conf.tmpl", func(dir, file string) []string { return []string{"-t", "-e", "stderr", "-p", dir, "-c", file} }},
		{"haproxy", "haproxy.cfg.tmpl", func(_, file string) []string { return []string{"-c", "-f", file} }},
	} {
		bin, err := exec.LookPath(tc.bin)
		if err != nil {
			t.Logf("%s not installed: config not checked", tc.bin)
			continue
		}
		for _, keep := range []bool{false, true} {
			name := tc.bin + "-" + strconv.FormatBool(keep)
			dir, _, file, err := renderPeer(e, name, tc.tmpl, 2, keep)
			if err != nil {
				t.Fatal(err)
			}
			conf, _ := os.ReadFile(file)
			if keep != strings.Contains(string(conf), map[string]string{"nginx": "\n\t\tkeepalive ", "haproxy": "\n\thttp-reuse always"}[tc.bin]) {
				t.Errorf("%s: keep-alive %v not what the config says:\n%s", name, keep, conf)
			}
			if out, err := exec.Command(bin, tc.check(dir, file)...).CombinedOutput(); err != nil {
				t.Errorf("%s rejects its config: %v\n%s\n%s", name, err, out, conf)
			}
		}
	}
}

// The backend role answers the three kinds of request the bench sends.
func TestServeBackend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeConfig{Role: RoleBackend, Listen: []string{"127.0.0.1:0", "127.0.0.1:0"}}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var addrs []string
	for len(addrs) < 2 && sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			addrs = append(addrs, a)
		}
	}
	go io.Copy(io.Discard, pr)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want two addresses", addrs)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	for _, a := range addrs {
		res, body := call(t, c, http.MethodGet, "http://"+a+"/anything", "")
		if res.StatusCode != 200 || body != Hello {
			t.Errorf("GET %s: %d %q", a, res.StatusCode, body)
		}
	}
	if res, body := call(t, c, http.MethodPost, "http://"+addrs[0]+"/sink", "12345"); res.StatusCode != 200 || body != "5" {
		t.Errorf("/sink: %d %q, want the body's length", res.StatusCode, body)
	}
	if res, body := call(t, c, http.MethodGet, "http://"+addrs[0]+"/bytes/100000", ""); res.StatusCode != 200 || len(body) != 100000 || res.ContentLength != 100000 {
		t.Errorf("/bytes/100000: %d, %d bytes, Content-Length %d", res.StatusCode, len(body), res.ContentLength)
	}
	if res, _ := call(t, c, http.MethodGet, "http://"+addrs[0]+"/bytes/x", ""); res.StatusCode != 400 {
		t.Errorf("/bytes/x: %d, want 400", res.StatusCode)
	}
}

func call(t *testing.T, c *http.Client, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestServeUnknownRole(t *testing.T) {
	err := Serve(context.Background(), ServeConfig{Role: "squid", Listen: []string{"127.0.0.1:0"}}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"squid"`) {
		t.Errorf("unknown role: %v", err)
	}
}

// treeStatus adds up a process and its descendants.
func TestTreeStatus(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep(1):", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	self := os.Getpid()
	if d := descendants(self); len(d) == 0 || !contains(d, cmd.Process.Pid) {
		t.Fatalf("descendants of %d: %v, want %d among them", self, d, cmd.Process.Pid)
	}
	own, err := statusKB(self, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	child, err := statusKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	total, err := treeStatus(self, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if total < (own+child)<<10 {
		t.Errorf("tree VmHWM %d, under own %d kB + child %d kB", total, own, child)
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// cpuTime follows the CPU this process burns.
func TestCPUTime(t *testing.T) {
	start, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1 << 20 {
			x += i
		}
		now, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > start {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stuck at %v after 10 s of spinning (%d)", now, x)
		}
	}
}
