package fakebackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Remote is a Backend running elsewhere — another process, a container —
// driven through its control API (see ControlHandler). Results cross the
// process boundary as JSON: times come back without a monotonic reading and
// in UTC or a fixed zone, otherwise they are what the backend itself returns.
type Remote struct {
	control *url.URL
	client  *http.Client
	own     *http.Transport // closed by Close; nil when the caller gave the client
	name    string
	url     string
	addr    string
	closed  atomic.Bool
}

var _ Backend = (*Remote)(nil)

// DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	url    string
	client *http.Client
}

// WithURL sets the data-plane URL that URL and Addr report, instead of the
// one the backend reports about itself. A backend in a container listens on
// 0.0.0.0:8080 but is reached through a mapped port from the host and
// through its network alias from other containers: whoever dials knows which
// one its proxy under test needs.
func WithURL(u string) DialOption { return func(c *dialConfig) { c.url = u } }

// WithHTTPClient sets the client used for the control API. The default one
// ignores proxy environment variables: control traffic goes straight to the
// backend.
func WithHTTPClient(hc *http.Client) DialOption { return func(c *dialConfig) { c.client = hc } }

// dialTimeout bounds Dial, which has no context of its own.
const dialTimeout = 10 * time.Second

// Dial connects to the control API at controlURL (e.g.
// "http://127.0.0.1:9101") and fetches the backend's identity from it.
func Dial(controlURL string, opts ...DialOption) (*Remote, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	return DialContext(ctx, controlURL, opts...)
}

// DialContext is Dial with a context bounding the first exchange.
func DialContext(ctx context.Context, controlURL string, opts ...DialOption) (*Remote, error) {
	var cfg dialConfig
	for _, o := range opts {
		o(&cfg)
	}
	cu, err := parseBaseURL(controlURL)
	if err != nil {
		return nil, fmt.Errorf("fakebackend: dial control %q: %w", controlURL, err)
	}
	r := &Remote{control: cu, client: cfg.client}
	if r.client == nil {
		r.own = &http.Transport{
			// No Proxy: HTTP_PROXY must not divert control traffic.
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}
		r.client = &http.Client{Transport: r.own}
	}
	var info Info
	if err := r.do(ctx, http.MethodGet, "/info", nil, nil, &info); err != nil {
		r.Close()
		return nil, fmt.Errorf("fakebackend: dial control %s: %w", cu, err)
	}
	r.name, r.url, r.addr = info.Name, info.URL, info.Addr
	if cfg.url != "" {
		du, err := parseBaseURL(cfg.url)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("fakebackend: dial %q: data URL %q: %w", info.Name, cfg.url, err)
		}
		r.url, r.addr = du.String(), du.Host
	}
	return r, nil
}

// parseBaseURL accepts an http URL with an explicit host and port and no path
// beyond "/".
func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("scheme %q: want http", u.Scheme)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return nil, fmt.Errorf("host %q: want host:port", u.Host)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("want a bare http://host:port, got path, query or fragment")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Name implements Backend.
func (r *Remote) Name() string { return r.name }

// URL implements Backend.
func (r *Remote) URL() string { return r.url }

// Addr implements Backend.
func (r *Remote) Addr() string { return r.addr }

// ControlURL is the base URL of the control API this Remote drives.
func (r *Remote) ControlURL() string { return r.control.String() }

// Requests implements Backend.
func (r *Remote) Requests(ctx context.Context) ([]Request, error) {
	var reqs []wireRequest
	err := r.do(ctx, http.MethodGet, "/requests", nil, nil, &reqs)
	return fromWireRequests(reqs), r.wrap(err)
}

// WaitRequests implements Backend. When ctx has a deadline, the backend is
// asked to give up slightly before it, so that on a timeout the requests that
// did arrive still come back along with an error wrapping
// context.DeadlineExceeded. When ctx is cancelled instead, the call is
// abandoned and no requests come back.
func (r *Remote) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	q := url.Values{"wait": {strconv.Itoa(n)}}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		left -= min(left/10, 250*time.Millisecond)
		if left <= 0 {
			return nil, r.wrap(fmt.Errorf("wait for %d requests: %w", n, context.DeadlineExceeded))
		}
		q.Set("timeout", left.String())
	}
	var reqs []wireRequest
	err := r.do(ctx, http.MethodGet, "/requests", q, nil, &reqs)
	if ce := (*ControlError)(nil); errors.As(err, &ce) && ce.Status == http.StatusGatewayTimeout {
		return fromWireRequests(ce.requests), r.wrap(fmt.Errorf("%w: %w", ce, context.DeadlineExceeded))
	}
	return fromWireRequests(reqs), r.wrap(err)
}

// Conns implements Backend.
func (r *Remote) Conns(ctx context.Context) ([]Conn, error) {
	var conns []Conn
	err := r.do(ctx, http.MethodGet, "/conns", nil, nil, &conns)
	return conns, r.wrap(err)
}

// Stats implements Backend.
func (r *Remote) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := r.do(ctx, http.MethodGet, "/stats", nil, nil, &st)
	return st, r.wrap(err)
}

// SetDefault implements Backend.
func (r *Remote) SetDefault(ctx context.Context, b Behaviour) error {
	return r.wrap(r.do(ctx, http.MethodPut, "/default", nil, toWireBehaviour(b), nil))
}

// Enqueue implements Backend.
func (r *Remote) Enqueue(ctx context.Context, bs ...Behaviour) error {
	ws := make([]wireBehaviour, len(bs)) // "[]", not "null", when empty
	for i, b := range bs {
		ws[i] = toWireBehaviour(b)
	}
	return r.wrap(r.do(ctx, http.MethodPost, "/queue", nil, ws, nil))
}

// SetMode implements Backend.
func (r *Remote) SetMode(ctx context.Context, m Mode) error {
	return r.wrap(r.do(ctx, http.MethodPut, "/mode", nil, modeBody{Mode: m}, nil))
}

// Reset implements Backend.
func (r *Remote) Reset(ctx context.Context) error {
	return r.wrap(r.do(ctx, http.MethodPost, "/reset", nil, nil, nil))
}

// Close releases the client side only: idle control connections. The backend
// keeps running; whoever started its process or container stops it. Calls
// after Close fail with an error wrapping net.ErrClosed.
func (r *Remote) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.own != nil {
		r.own.CloseIdleConnections()
	}
	return nil
}

func (r *Remote) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("fakebackend %q: %w", r.name, err)
}

// ControlError is a control API answer other than success.
type ControlError struct {
	Op      string // method and path, e.g. "PUT /default"
	Status  int    // HTTP status code
	Message string // the backend's reason

	requests []wireRequest // recorded so far, when a wait timed out
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// do performs one control call: in, when not nil, is sent as JSON; a
// successful answer is decoded into out, when not nil.
func (r *Remote) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if r.closed.Load() {
		return fmt.Errorf("%s %s: remote closed: %w", method, path, net.ErrClosed)
	}
	u := *r.control
	u.Path = path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return controlError(method+" "+path, resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body) // keep the connection reusable
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func controlError(op string, resp *http.Response) error {
	ce := &ControlError{Op: op, Status: resp.StatusCode}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxControlBody))
	var eb errorBody
	switch {
	case err != nil:
		ce.Message = fmt.Sprintf("reading the answer: %v", err)
	case json.Unmarshal(raw, &eb) == nil && eb.Error != "":
		ce.Message, ce.requests = eb.Error, eb.Requests
	default:
		// Not our API answering (a proxy in the way, a wrong port): show
		// what did.
		ce.Message = strings.TrimSpace(string(raw))
	}
	return ce
}
