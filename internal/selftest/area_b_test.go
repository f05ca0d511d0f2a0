package selftest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/reference"
)

// Area B's specs: header rules, forwarding headers, the upstream
// connection, the path prefix and the request target.
const areaB = `^(hop-by-hop|forwarded|upstream|prefix|target|method)/`

// Ginkgo's RunSpecs runs once per process: each run below re-executes the
// test binary, which runs TestAreaBChild with the named configuration.
const areaBChildEnv = "PROXYSPEC_AREA_B_CHILD"

// areaBRun is one run of area B's specs against one subject.
type areaBRun struct {
	profile conformance.Profile
	build   func(conformance.Topology) (http.Handler, error)
	// mustFail are the specs the subject is built to break.
	mustFail []string
}

var areaBRuns = map[string]areaBRun{
	"reference-rfc9110": {profile: conformance.ProfileRFC9110, build: func(t conformance.Topology) (http.Handler, error) {
		return reference.New(t, nil)
	}},
	"verbatim-request-headers": {profile: conformance.ProfileSeed, build: verbatimRequestHeaders, mustFail: []string{
		"hop-by-hop/request/connection", "hop-by-hop/request/connection-list", "hop-by-hop/request/keep-alive",
		"hop-by-hop/request/te", "hop-by-hop/request/te-trailers", "hop-by-hop/request/upgrade",
		"hop-by-hop/request/proxy-authorization", "hop-by-hop/request/trailer", "hop-by-hop/request/trailers",
		"hop-by-hop/request/connection-lines", "hop-by-hop/request/connection-case",
		"hop-by-hop/request/connection-whitespace", "hop-by-hop/request/proxy-connection",
	}},
	"verbatim-request-headers-rfc9110": {profile: conformance.ProfileRFC9110, build: verbatimRequestHeaders, mustFail: []string{
		// te-trailers passes here: the client's Connection: TE travels
		// too, which is how a proxy announces its own TE: trailers.
		"hop-by-hop/request/keep-alive", "hop-by-hop/request/te",
		"hop-by-hop/request/keep-alive-unlisted", "hop-by-hop/request/te-unlisted", "hop-by-hop/request/upgrade-unlisted",
	}},
	"verbatim-response-headers": {profile: conformance.ProfileSeed, build: verbatimResponseHeaders, mustFail: []string{
		"hop-by-hop/response/connection-listed", "hop-by-hop/response/keep-alive", "hop-by-hop/response/upgrade",
		"hop-by-hop/response/proxy-authenticate", "hop-by-hop/response/trailer", "hop-by-hop/response/connection-lines",
		"hop-by-hop/response/connection-case", "hop-by-hop/response/proxy-connection",
	}},
	// httputil.ReverseProxy as it comes: it pools backend connections,
	// relays TE: trailers without naming it in Connection, relays an
	// upgrade request, and adds neither Via nor a "1.1 rws".
	"httputil-seed": {profile: conformance.ProfileSeed, build: plainHTTPUtil, mustFail: []string{
		"upstream/connection-close", "upstream/one-request-per-connection",
		"hop-by-hop/request/te-trailers", "hop-by-hop/request/upgrade", "hop-by-hop/request/trailers",
		"forwarded/via/added",
	}},
	// httputil also misses the fields a backend's Connection names when it
	// says close too: net/http deletes that Connection before httputil
	// looks (the reference had the same bug).
	"httputil-rfc9110": {profile: conformance.ProfileRFC9110, build: plainHTTPUtil, mustFail: []string{
		"hop-by-hop/request/te-trailers", "hop-by-hop/response/connection-listed-close",
	}},
	"rewrites-target": {profile: conformance.ProfileRFC9110, build: rewritesTarget, mustFail: []string{
		"target/unchanged", "prefix/query-kept",
	}},
	"open-proxy": {profile: conformance.ProfileRFC9110, build: openProxy, mustFail: []string{
		"target/absolute-form", "target/host-not-routed", "method/connect",
	}},
	"naive-prefix": {profile: conformance.ProfileSeed, build: naivePrefix, mustFail: []string{
		"prefix/non-matching", "prefix/dot-segments",
	}},
	"strips-prefix": {profile: conformance.ProfileRFC9110, build: stripsPrefix, mustFail: []string{
		"prefix/matching", "prefix/not-stripped", "prefix/query-kept",
	}},
	"overwrites-forwarding": {profile: conformance.ProfileSeed, build: overwritesForwarding, mustFail: []string{
		"forwarded/x-forwarded-for/appended", "forwarded/x-forwarded-for/multiple-lines",
		"forwarded/via/appended", "forwarded/host/replaced",
	}},
	"bad-via-rfc9110": {profile: conformance.ProfileRFC9110, build: badVia, mustFail: []string{
		"forwarded/via/added", "forwarded/via/appended",
	}},
	"mangles-end-to-end": {profile: conformance.ProfileRFC9110, build: manglesEndToEnd, mustFail: []string{
		"forwarded/end-to-end-kept", "forwarded/end-to-end-kept-response",
	}},
	"double-framing": {profile: conformance.ProfileRFC9110, build: doubleFraming, mustFail: []string{
		"hop-by-hop/request/transfer-encoding", "hop-by-hop/response/transfer-encoding",
	}},
}

func TestAreaBChild(t *testing.T) {
	name := os.Getenv(areaBChildEnv)
	if name == "" {
		t.Skip("runs only as a child process of an area B test")
	}
	run := areaBRuns[name]
	rep, err := conformance.Run(conformance.Config{
		Subject:    conformance.Handler(name, run.build),
		Profile:    run.profile,
		Focus:      areaB,
		ReportJSON: os.Getenv("PROXYSPEC_TEST_REPORT"),
	}, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(conformance.ExitSetup)
	}
	os.Exit(rep.ExitCode())
}

// TestAreaBReferenceRFC9110 runs area B's rfc9110 specs against the
// reference proxy, which must pass them all.
func TestAreaBReferenceRFC9110(t *testing.T) {
	rep := runAreaB(t, "reference-rfc9110")
	if len(rep.Specs) == 0 {
		t.Fatal("no spec ran")
	}
	for _, s := range rep.Specs {
		if s.State != conformance.StatePassed {
			t.Errorf("%s (%s): %s: %s", s.ID, s.Level, s.State, s.Failure)
		}
	}
}

// TestAreaBCatchesBrokenProxies runs area B's specs against proxies broken
// on purpose: each spec a proxy is built to break must fail.
func TestAreaBCatchesBrokenProxies(t *testing.T) {
	for name, run := range areaBRuns {
		if len(run.mustFail) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			rep := runAreaB(t, name)
			states := map[string]conformance.Result{}
			for _, s := range rep.Specs {
				states[s.ID] = s
			}
			for _, id := range run.mustFail {
				s, ok := states[id]
				switch {
				case !ok:
					t.Errorf("%s did not run", id)
				case s.State != conformance.StateFailed:
					t.Errorf("%s: %s, want failed", id, s.State)
				}
			}
		})
	}
}

// runAreaB runs the named configuration in a child process and returns its
// report.
func runAreaB(t *testing.T, name string) conformance.Report {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(exe, "-test.run=^TestAreaBChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), areaBChildEnv+"="+name, "PROXYSPEC_TEST_REPORT="+report)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		t.Fatalf("child %s: %v", name, err)
	}
	rep, err := conformance.ReadReport(report)
	if err != nil {
		t.Fatalf("child %s left no report: %v\n%s", name, err, out.String())
	}
	return rep
}

// The broken proxies. Each forwards to the first backend and breaks one
// family of rules; a prefix, when configured, is honoured by segment
// unless breaking it is the point.

func firstBackend(t conformance.Topology) (*url.URL, error) {
	if len(t.Backends) == 0 {
		return nil, errors.New("needs a backend")
	}
	return url.Parse(t.Backends[0].URL)
}

// httputilWith is httputil.ReverseProxy to the first backend, with rewrite
// applied after the usual SetURL and SetXForwarded.
func httputilWith(t conformance.Topology, rewrite func(*httputil.ProxyRequest)) (*httputil.ReverseProxy, error) {
	u, err := firstBackend(t)
	if err != nil {
		return nil, err
	}
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.SetXForwarded()
		if rewrite != nil {
			rewrite(pr)
		}
	}}, nil
}

func underPrefix(t conformance.Topology, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean(r.URL.Path)
		if t.PathPrefix != "" && p != t.PathPrefix && !strings.HasPrefix(p, t.PathPrefix+"/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func plainHTTPUtil(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, nil)
	return underPrefix(t, p), err
}

// verbatimRequestHeaders forwards the client's fields as they came. It
// writes the request itself: Go's transport would drop a Trailer field.
func verbatimRequestHeaders(t conformance.Topology) (http.Handler, error) {
	u, err := firstBackend(t)
	if err != nil {
		return nil, err
	}
	return underPrefix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var head strings.Builder
		fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.RequestURI, u.Host)
		for k, vv := range r.Header {
			for _, v := range vv {
				fmt.Fprintf(&head, "%s: %s\r\n", k, v)
			}
		}
		head.WriteString("\r\n")
		res, body, err := rawExchange(u.Host, head.String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header()["Content-Type"] = res.Header["Content-Type"]
		w.Header()["X-Proxyspec-Backend"] = res.Header["X-Proxyspec-Backend"]
		w.WriteHeader(res.StatusCode)
		w.Write(body)
	})), nil
}

// rawExchange writes raw to a new connection to addr and reads one
// response and its body.
func rawExchange(addr, raw string) (*http.Response, []byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, nil, err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// verbatimResponseHeaders relays the backend's fields as they came.
func verbatimResponseHeaders(t conformance.Topology) (http.Handler, error) {
	u, err := firstBackend(t)
	if err != nil {
		return nil, err
	}
	return underPrefix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI, out.URL.Scheme, out.URL.Host, out.Host = "", "http", u.Host, u.Host
		res, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, vv := range res.Header {
			w.Header()[k] = vv
		}
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
	})), nil
}

// rewritesTarget re-encodes the path from its decoded form, merges
// slashes and re-encodes the query, as a normalizing proxy does.
func rewritesTarget(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Path = path.Clean(pr.Out.URL.Path)
		pr.Out.URL.RawPath = ""
		pr.Out.URL.RawQuery = pr.Out.URL.Query().Encode()
	})
	return underPrefix(t, p), err
}

// openProxy goes where the request says when it names a host other than
// the proxy: the absolute-form authority or the Host; it tunnels CONNECT.
// Only IP literals are dialled, so that no name is ever looked up; any
// other host gets a 502 as if unreachable.
func openProxy(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, nil)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if self, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && r.Host == self.String() {
			p.ServeHTTP(w, r)
			return
		}
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil || net.ParseIP(host) == nil {
			http.Error(w, "unreachable", http.StatusBadGateway)
			return
		}
		if r.Method == http.MethodConnect {
			c, err := net.Dial("tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			c.Close()
			w.WriteHeader(http.StatusOK)
			return
		}
		u := &url.URL{Scheme: "http", Host: r.Host}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }}).ServeHTTP(w, r)
	}), nil
}

// naivePrefix matches the prefix as a string and forwards dot segments.
func naivePrefix(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, t.PathPrefix) {
			http.NotFound(w, r)
			return
		}
		p.ServeHTTP(w, r)
	}), err
}

// stripsPrefix removes the prefix before forwarding.
func stripsPrefix(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Path = strings.TrimPrefix(pr.Out.URL.Path, t.PathPrefix)
		pr.Out.URL.RawPath = ""
	})
	return underPrefix(t, p), err
}

// overwritesForwarding replaces X-Forwarded-For and Via instead of
// appending, and keeps the client's Host.
func overwritesForwarding(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, func(pr *httputil.ProxyRequest) {
		ip, _, _ := net.SplitHostPort(pr.In.RemoteAddr)
		pr.Out.Header.Set("X-Forwarded-For", ip)
		pr.Out.Header.Set("Via", "1.1 rws")
		pr.Out.Host = pr.In.Host
	})
	return underPrefix(t, p), err
}

// badVia sends a Via without a protocol, after dropping the client's.
func badVia(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, func(pr *httputil.ProxyRequest) {
		pr.Out.Header.Set("Via", "rws")
	})
	return underPrefix(t, p), err
}

// manglesEndToEnd reverses repeated request fields, drops Authorization
// and folds Set-Cookie lines into one.
func manglesEndToEnd(t conformance.Topology) (http.Handler, error) {
	p, err := httputilWith(t, func(pr *httputil.ProxyRequest) {
		for k, vv := range pr.Out.Header {
			rev := slices.Clone(vv)
			slices.Reverse(rev)
			pr.Out.Header[k] = rev
		}
		pr.Out.Header.Del("Authorization")
	})
	if err != nil {
		return nil, err
	}
	p.ModifyResponse = func(res *http.Response) error {
		if c := res.Header.Values("Set-Cookie"); len(c) > 1 {
			res.Header.Set("Set-Cookie", strings.Join(c, ", "))
		}
		return nil
	}
	return underPrefix(t, p), nil
}

// doubleFraming frames messages twice: Content-Length next to
// Transfer-Encoding: chunked, upstream and back to the client.
func doubleFraming(t conformance.Topology) (http.Handler, error) {
	u, err := firstBackend(t)
	if err != nil {
		return nil, err
	}
	return underPrefix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.Method, r.RequestURI, u.Host)
		if len(body) > 0 {
			fmt.Fprintf(c, "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), len(body), body)
		} else {
			io.WriteString(c, "\r\n")
		}
		res, err := http.ReadResponse(bufio.NewReader(c), r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		got, err := io.ReadAll(res.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
			res.StatusCode, http.StatusText(res.StatusCode), len(got), len(got), got)
		bw.Flush()
	})), nil
}
