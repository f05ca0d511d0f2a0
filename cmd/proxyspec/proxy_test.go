package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedWriter collects what a command writes from several goroutines.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// proxyCmd is a running `proxyspec proxy`.
type proxyCmd struct {
	addr   string
	stderr *lockedWriter
	cancel context.CancelFunc
	done   chan int
}

// startProxyCmd runs the command in-process and waits for its listening line.
func startProxyCmd(t *testing.T, args ...string) *proxyCmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	c := &proxyCmd{stderr: &lockedWriter{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		c.done <- commands["proxy"].run(ctx, args, pw, c.stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no listening line (%v); stderr:\n%s", err, c.stderr)
	}
	go io.Copy(io.Discard, pr)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("listening line %q", line)
	}
	c.addr = addr
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop cancels the command's context, as SIGTERM does, and returns its
// exit status.
func (c *proxyCmd) stop(t *testing.T) int {
	t.Helper()
	c.cancel()
	select {
	case code := <-c.done:
		c.done <- code
		return code
	case <-time.After(proxyShutdownGrace + 5*time.Second):
		t.Fatal("proxy did not stop")
		return -1
	}
}

func namedBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+" "+r.Header.Get("Via"))
	}))
	t.Cleanup(s.Close)
	return s
}

func plainGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestProxyCommandForwardsRoundRobin(t *testing.T) {
	a, b := namedBackend(t, "a"), namedBackend(t, "b")
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", a.URL, "--backend", b.URL,
		"--path-prefix", "/api", "--connect-timeout", "1s", "--read-timeout", "2s")
	var got []string
	for range 4 {
		code, body := plainGet(t, "http://"+p.addr+"/api/x?y=1")
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		got = append(got, body)
	}
	if strings.Join(got, "|") != "a 1.1 rws|b 1.1 rws|a 1.1 rws|b 1.1 rws" {
		t.Errorf("responses %q", got)
	}
	if code, _ := plainGet(t, "http://"+p.addr+"/other"); code != http.StatusNotFound {
		t.Errorf("outside the prefix: %d, want 404", code)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit status %d after cancel, want 0", code)
	}
	log := p.stderr.String()
	for _, want := range []string{"msg=request method=GET target=\"/api/x?y=1\" status=200 backend=" + strings.TrimPrefix(a.URL, "http://"), "duration="} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestProxyCommandFinishesRequestsOnShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "late")
	}))
	t.Cleanup(slow.Close)
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", slow.URL)

	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{}}
		r, err := c.Get("http://" + p.addr + "/")
		if err != nil {
			res <- result{body: err.Error()}
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		res <- result{r.StatusCode, string(b)}
	}()
	<-arrived
	p.cancel()
	// Shutdown closes the listener first; once it refuses connections the
	// request in flight is being drained.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("proxy still accepting after cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-res; r.code != http.StatusOK || r.body != "late" {
		t.Errorf("request in flight got %d %q, want 200 late", r.code, r.body)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// A client connection that never sent a byte does not hold up the stop:
// http.Server.Shutdown alone would wait five seconds for it.
func TestProxyCommandStopsPromptlyWithSilentConnection(t *testing.T) {
	p := startProxyCmd(t, "--listen", "127.0.0.1:0", "--backend", namedBackend(t, "a").URL)
	silent, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The listener hands out connections in order: once a later one is
	// answered, the silent one has been accepted.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if r, err := c.Get("http://" + p.addr + "/"); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code
	case <-time.After(4 * time.Second):
		t.Fatal("the proxy waited on a connection that never sent a request")
	}
}

func TestProxyConfigFromEnvironment(t *testing.T) {
	env := map[string]string{
		"PROXYSPEC_LISTEN":             "127.0.0.1:9999",
		"PROXYSPEC_BACKENDS":           "http://127.0.0.1:9001,127.0.0.1:9002",
		"PROXYSPEC_PATH_PREFIX":        "/api",
		"PROXYSPEC_CONNECT_TIMEOUT_MS": "250",
		"PROXYSPEC_READ_TIMEOUT_MS":    "1500",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	s, code := proxyConfig(nil, lookup, io.Discard)
	if code != -1 {
		t.Fatalf("exit %d", code)
	}
	if s.listen != "127.0.0.1:9999" || strings.Join(s.backends, " ") != "http://127.0.0.1:9001 127.0.0.1:9002" ||
		s.prefix != "/api" || s.connect != 250*time.Millisecond || s.read != 1500*time.Millisecond {
		t.Errorf("from env: %+v", s)
	}

	// Flags win over the environment.
	s, _ = proxyConfig([]string{"--listen", "127.0.0.1:1", "--backend", "h2://b:2", "--path-prefix", "",
		"--connect-timeout", "3s", "--read-timeout", "4s"}, lookup, io.Discard)
	if s.listen != "127.0.0.1:1" || strings.Join(s.backends, " ") != "h2://b:2" || s.prefix != "" ||
		s.connect != 3*time.Second || s.read != 4*time.Second {
		t.Errorf("flags over env: %+v", s)
	}

	// Unset, empty and 0 leave the defaults.
	env = map[string]string{"PROXYSPEC_BACKENDS": "", "PROXYSPEC_CONNECT_TIMEOUT_MS": "0"}
	s, _ = proxyConfig(nil, lookup, io.Discard)
	if s.listen != "127.0.0.1:8080" || len(s.backends) != 0 || s.connect != 5*time.Second || s.read != 30*time.Second {
		t.Errorf("defaults: %+v", s)
	}
}

func TestProxyCommandRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--connect-timeout", "soon"}, want: "soon"},
		{args: []string{"--read-timeout", "-1s"}, want: "-1s"},
		{env: map[string]string{"PROXYSPEC_READ_TIMEOUT_MS": "1.5"}, want: `PROXYSPEC_READ_TIMEOUT_MS="1.5"`},
		{env: map[string]string{"PROXYSPEC_CONNECT_TIMEOUT_MS": "-3"}, want: `"-3"`},
		{env: map[string]string{"PROXYSPEC_LISTEN": "nowhere"}, want: `"nowhere"`},
		{args: []string{"stray"}, want: `"stray"`},
	} {
		var stderr bytes.Buffer
		lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		if _, code := proxyConfig(tc.args, lookup, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 naming %s", tc.args, tc.env, code, stderr.String(), tc.want)
		}
	}
	// A backend the proxy cannot use fails at start, named.
	var stderr bytes.Buffer
	code := commands["proxy"].run(context.Background(), []string{"--listen", "127.0.0.1:0", "--backend", "https://x:443"}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `"https://x:443"`) {
		t.Errorf("bad backend: exit %d, stderr %q", code, stderr.String())
	}
}
