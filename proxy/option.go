package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// Defaults from the seed.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 30 * time.Second
	// WriteTimeout bounds each write of the forwarded request to a backend.
	// The seed fixes it; it is not configurable.
	WriteTimeout = 10 * time.Second
)

// An Option configures a ReverseProxy in New.
type Option func(*config) error

type config struct {
	prefix         string
	strategy       Strategy
	connectTimeout time.Duration
	readTimeout    time.Duration
	logger         *slog.Logger
	wrap           func(http.RoundTripper) http.RoundTripper
	pooled         bool // WithPooledUpstream
}

// WithPathPrefix restricts proxying to a path prefix matched on segment
// boundaries: "/api" covers /api, /api/ and /api/x but not /apix. A trailing
// slash is ignored; "" and "/" mean every request.
func WithPathPrefix(prefix string) Option {
	return func(c *config) error {
		p := strings.TrimRight(prefix, "/")
		if p == "" {
			c.prefix = ""
			return nil
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") || path.Clean(p) != p {
			return fmt.Errorf("proxy: path prefix %q: must be a clean absolute path without query or fragment", prefix)
		}
		c.prefix = p
		return nil
	}
}

// WithStrategy sets the backend selection policy; the default is a new
// RoundRobin for each proxy.
func WithStrategy(s Strategy) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("proxy: nil strategy")
		}
		c.strategy = s
		return nil
	}
}

// WithConnectTimeout bounds each TCP connect (DNS included) per attempt.
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("proxy: connect timeout %v: must be positive", d)
		}
		c.connectTimeout = d
		return nil
	}
}

// WithReadTimeout bounds the wait for a backend's response headers and every
// gap between reads of its response body.
func WithReadTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("proxy: read timeout %v: must be positive", d)
		}
		c.readTimeout = d
		return nil
	}
}

// WithLogger sets where failed attempts (Warn) and one line per proxied
// request (Info) are logged; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("proxy: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRoundTripper wraps the transport used for upstream attempts, for
// tracing or metrics. The wrapper's RoundTrip is called exactly once per
// attempt, with a request whose context derives from the client request's
// context and whose headers already follow the proxy's rules; the proxy
// applies its response rules to what the wrapper returns.
func WithRoundTripper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *config) error {
		if wrap == nil {
			return fmt.Errorf("proxy: nil round-tripper wrapper")
		}
		c.wrap = wrap
		return nil
	}
}
