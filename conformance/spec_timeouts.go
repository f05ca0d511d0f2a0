package conformance

import (
	"errors"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// earlyTolerance is how much sooner than configured a timeout may fire:
// event-loop proxies compute deadlines from a cached clock that can lag
// real time by a few milliseconds.
const earlyTolerance = 0.1

func init() {
	addGroup("timeouts", func(s *Suite) {
		s.It(Meta{
			ID:       "timeouts/connect",
			Title:    "when no backend completes the TCP handshake, a gateway error comes after the connect timeout, not much later or sooner",
			Level:    MUST,
			Source:   "seed §Timeouts (TCP connect timeout) and §502 Bad Gateway; RFC 9110 §15.6.3, §15.6.5",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 2, ShortConnect: true})
			for _, b := range e.Backends {
				e.SetMode(b.Name(), fakebackend.Blackhole)
			}

			x := e.Get("/timeouts/connect")

			expectBadGateway(e, x)
			// The seed tries every backend, each for a whole connect
			// timeout; a subject declaring no failover tries one, and
			// RFC 9110 does not ask for failover at all: either may
			// answer after a single connect timeout.
			n := time.Duration(len(e.Backends))
			least := e.ConnectTimeout()
			if e.Profile() == ProfileSeed && !slices.Contains(e.cfg.Subject.Lacks(), FeatureFailover) {
				least = n * e.ConnectTimeout()
			}
			expectTook(x, "the gateway error", least, e.Within(n*e.ConnectTimeout()))
		})

		s.It(Meta{
			ID:       "timeouts/read-header",
			Title:    "a backend that sends no status line within the read timeout gets the client a gateway error, in time",
			Level:    MUST,
			Source:   "seed §Timeouts (response read timeout) and §502 Bad Gateway; RFC 9110 §15.6.5: no timely response from the upstream server",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, ShortRead: true})
			// Late enough that a proxy ignoring its read timeout relays a
			// 200 only after the bound below, so the failure says so.
			e.SetDefault("a", fakebackend.Behaviour{Delay: fakebackend.D(2 * e.Within(e.ReadTimeout()))})

			x := e.Get("/timeouts/read-header")

			Expect(x.Status()).NotTo(Equal(http.StatusOK), "the proxy waited past its read timeout (%v) and relayed the late answer after %v", e.ReadTimeout(), x.Took)
			expectBadGateway(e, x)
			expectTook(x, "the gateway error", e.ReadTimeout(), e.Within(e.ReadTimeout()))
		})

		Table(s, Meta{
			Level:    MUST,
			Source:   "seed §Timeouts (response read timeout); RFC 9112 §6.3, §8: a message cut short is incomplete, and the connection is closed",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env, framing string) {
			e.Start(TopologyRequest{Backends: 1, ShortRead: true})
			body := strings.Repeat("0123456789abcdef", 8)
			e.SetDefault("a", fakebackend.Behaviour{Body: &body, Framing: framing, ChunkSize: 16, Fault: fakebackend.HangMidBody})

			x := e.Send(RawRequest(http.MethodGet, "/timeouts/read-body-gap", e.Proxy, nil, ""))

			switch {
			case x.Err == nil && e.Profile() == ProfileRFC9110 && x.Status() >= 500 && x.Header("X-Proxyspec-Backend") == nil:
				// A proxy that buffers whole responses may answer with an
				// error of its own instead.
			case x.Err == nil:
				Expect(x.Err).To(HaveOccurred(), "the client got a complete %d with %d of the backend's %d body bytes: a stalled response was passed off as whole", x.Status(), len(x.Body), len(body))
			case errors.Is(x.Err, os.ErrDeadlineExceeded):
				ginkgo.Fail("the proxy kept the client waiting for the stalled body until the client gave up after " + x.Took.String() + "; its read timeout is " + e.ReadTimeout().String())
			}
			expectTook(x, "the end of the connection", e.ReadTimeout(), e.Within(e.ReadTimeout()))
		},
			Entry(Meta{ID: "timeouts/read-body-gap", Title: "a body (Content-Length) that stalls beyond the read timeout is cut off: the client never gets it as complete"}, "length"),
			Entry(Meta{ID: "timeouts/read-body-gap-chunked", Title: "a chunked body that stalls beyond the read timeout is cut off, without a last chunk"}, "chunked"),
		)

		s.It(Meta{
			ID:       "timeouts/not-early",
			Title:    "a backend answering well within the read timeout (a margin's fraction of it) is relayed",
			Level:    MUST,
			Source:   "seed §Timeouts: the read timeout is the configured one; so for any proxy that has a configurable read timeout (feature read-timeout)",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, ShortRead: true})
			delay := time.Duration(float64(e.ReadTimeout()) / e.Margin())
			e.SetDefault("a", fakebackend.Behaviour{Delay: fakebackend.D(delay)})

			x := e.Get("/timeouts/not-early")

			Expect(x.Status()).To(Equal(http.StatusOK), "a backend answering after %v, a third of the read timeout %v, should be relayed", delay, e.ReadTimeout())
			Expect(x.Header("X-Proxyspec-Backend")).To(ConsistOf("a"), "the backend that answered")
		})

		s.It(Meta{
			ID:       "timeouts/read-gaps",
			Title:    "the read timeout bounds each gap in a response, not the whole: a slow body with short gaps is relayed whole",
			Level:    SHOULD,
			Source:   "seed §Timeouts: a response read timeout (a socket read timeout bounds each read); the reference bounds every gap",
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1, ShortRead: true})
			// Gaps of a margin's fraction of the read timeout, enough of
			// them that the body takes twice the read timeout.
			gap := time.Duration(float64(e.ReadTimeout()) / e.Margin())
			gaps := int(math.Ceil(2 * e.Margin()))
			body := strings.Repeat("slow-body", gaps+1)
			e.SetDefault("a", fakebackend.Behaviour{Body: &body, SlowBody: &fakebackend.Slow{Bytes: len("slow-body"), Interval: fakebackend.D(gap)}})

			x := e.Get("/timeouts/read-gaps")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			Expect(string(x.Body)).To(Equal(body), "the body, sent in %d pieces %v apart (%v in all, read timeout %v)", gaps+1, gap, time.Duration(gaps)*gap, e.ReadTimeout())
		})
	})
}

// expectTook checks that x took at least least (less the early tolerance)
// and at most most.
func expectTook(x *Exchange, what string, least, most time.Duration) {
	ginkgo.GinkgoHelper()
	floor := time.Duration(float64(least) * (1 - earlyTolerance))
	Expect(x.Took).To(BeNumerically(">=", floor), "%s came after %v: sooner than the configured %v allows", what, x.Took, least)
	Expect(x.Took).To(BeNumerically("<=", most), "%s came after %v: later than %v", what, x.Took, most)
}
