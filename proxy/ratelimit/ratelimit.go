// Package ratelimit limits the request rate of each client, as the seed's
// RateLimitLayer placed in front of the reverse proxy: a token bucket per
// client IP address (golang.org/x/time/rate), a 429 Too Many Requests with
// Retry-After when the bucket is empty.
//
// The client is the peer of the connection (Request.RemoteAddr); forwarding
// headers such as X-Forwarded-For are not trusted, since any client can set
// them. IPv6 clients are limited per /64, the smallest block a single
// subscriber is usually given, so that one host cannot escape its limit by
// rotating addresses inside its own network.
//
// Memory is bounded: a client's bucket is forgotten as soon as it has
// refilled (it is then the same as a new one), which happens at most one
// period after its last request, and the number of buckets is capped.
package ratelimit

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxClients caps the buckets held at once (about 10 MiB).
const DefaultMaxClients = 65536

// Limiter allows each client n requests per period: bursts of up to n, and
// on average one request every period/n.
type Limiter struct {
	limit      rate.Limit
	burst      int
	per        time.Duration
	maxClients int
	now        func() time.Time

	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	nextSweep time.Time // when buckets untouched since the last sweep are full
	firstFull time.Time // when the first bucket seen by the last sweep refills
}

// An Option configures a Limiter.
type Option func(*Limiter) error

// WithMaxClients caps how many clients are tracked at once. When every
// tracked client is still limited, a new client is refused (429) until the
// first bucket refills: memory stays bounded, and under a flood of sources
// the limiter fails closed rather than open.
func WithMaxClients(n int) Option {
	return func(l *Limiter) error {
		if n < 1 {
			return fmt.Errorf("ratelimit: max clients %d: must be at least 1", n)
		}
		l.maxClients = n
		return nil
	}
}

// New returns a limiter allowing each client n requests per period; the
// seed's layer is New(100, time.Minute).
func New(n int, per time.Duration, opts ...Option) (*Limiter, error) {
	if n < 1 {
		return nil, fmt.Errorf("ratelimit: %d requests: must be at least 1", n)
	}
	if per <= 0 {
		return nil, fmt.Errorf("ratelimit: period %v: must be positive", per)
	}
	l := &Limiter{
		limit:      rate.Limit(float64(n) / per.Seconds()),
		burst:      n,
		per:        per,
		maxClients: DefaultMaxClients,
		now:        time.Now,
		clients:    map[string]*rate.Limiter{},
	}
	for _, o := range opts {
		if err := o(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Wrap returns a handler that answers 429 Too Many Requests (RFC 6585 §4) to
// clients over their limit, with Retry-After (RFC 9110 §10.2.3) set to the
// whole seconds until their next request would be allowed, and passes the
// other requests to next.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait := l.reserve(clientKey(r.RemoteAddr), l.now()); wait > 0 {
			secs := int(math.Ceil(wait.Seconds()))
			h := w.Header()
			h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "429 Too Many Requests")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reserve takes a token from key's bucket and returns 0, or returns how long
// until a token will be available and takes nothing.
func (l *Limiter) reserve(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.nextSweep) || len(l.clients) >= l.maxClients && !now.Before(l.firstFull) {
		l.sweep(now)
	}
	lim, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= l.maxClients {
			return l.firstFull.Sub(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[key] = lim
	}
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		// Refused requests cost nothing: give the token back.
		res.CancelAt(now)
		return d
	}
	return 0
}

// sweep forgets the clients whose bucket is full again. It runs once a
// period, when a bucket untouched since the previous sweep must be full,
// and when the cap is reached and some bucket has refilled since.
func (l *Limiter) sweep(now time.Time) {
	l.nextSweep = now.Add(l.per)
	l.firstFull = l.nextSweep
	for k, lim := range l.clients {
		missing := float64(l.burst) - lim.TokensAt(now)
		if missing <= 0 {
			delete(l.clients, k)
			continue
		}
		full := now.Add(time.Duration(missing / float64(l.limit) * float64(time.Second)))
		if full.Before(l.firstFull) {
			l.firstFull = full
		}
	}
}

// clientKey is the bucket a connection's peer draws from: its IP address, or
// its /64 for IPv6.
func clientKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return remoteAddr
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}
