package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Topology is what a spec asks for: the backends a proxy under test must
// forward to, in order, and the proxy's configuration. It is everything a
// subject needs to start a proxy.
type Topology struct {
	Backends       []Endpoint    `json:"backends"`
	PathPrefix     string        `json:"path_prefix,omitempty"` // "" proxies everything
	ConnectTimeout time.Duration `json:"connect_timeout"`
	ReadTimeout    time.Duration `json:"read_timeout"`
}

// Endpoint is one backend as the proxy under test must address it.
type Endpoint struct {
	Name string `json:"name"`
	URL  string `json:"url"`  // "http://host:port"
	Host string `json:"host"` // host without port (an IPv6 literal without brackets)
	Port int    `json:"port"`
}

// Subject starts a proxy under test for a topology. Implementations:
// Handler (a Go http.Handler served in-process), Command (any program that
// follows the PROXYSPEC_* environment contract, optionally configured from a
// template), Container (an image on the run's Docker network).
type Subject interface {
	// Name identifies the implementation in reports ("reference", "nginx").
	Name() string
	// Lacks lists the features this implementation cannot express; specs
	// needing them are reported as not supported rather than failed.
	Lacks() []Feature
	// Start starts a proxy for t and returns once it accepts connections.
	// An error here is a setup failure, never a spec failure; it should carry
	// the subject's output.
	Start(ctx context.Context, t Topology) (Instance, error)
}

// Instance is one running proxy under test.
type Instance interface {
	// Addr is the host:port clients connect to.
	Addr() string
	// Output is what the proxy printed so far (stdout and stderr, or logs),
	// for reports.
	Output() string
	// Stop stops the proxy and waits for it to be gone.
	Stop(ctx context.Context) error
}

// Feature is a capability a spec needs beyond plain forwarding. A subject
// that lacks it gets "not supported" for the specs that need it.
type Feature string

// Features a spec may need.
const (
	FeaturePathPrefix     Feature = "path-prefix"     // proxy only a prefix, fall through otherwise
	FeatureConnectTimeout Feature = "connect-timeout" // configurable connect timeout
	FeatureReadTimeout    Feature = "read-timeout"    // configurable read timeout
	FeatureFailover       Feature = "failover"        // retry another backend on failure
	FeatureRoundRobin     Feature = "round-robin"     // exact cyclic selection
	FeatureMultiBackend   Feature = "multi-backend"   // more than one backend
	FeatureXForwardedFor  Feature = "x-forwarded-for" // adds X-Forwarded-For
	FeatureVia            Feature = "via"             // adds Via
)

// Features lists every Feature a subject may lack.
func Features() []Feature {
	return []Feature{FeaturePathPrefix, FeatureConnectTimeout, FeatureReadTimeout, FeatureFailover,
		FeatureRoundRobin, FeatureMultiBackend, FeatureXForwardedFor, FeatureVia}
}

// ParseFeatures parses a comma-separated list of features ("failover,via"),
// rejecting unknown names so that a typo does not pass silently.
func ParseFeatures(list string) ([]Feature, error) {
	var fs []Feature
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(Features(), Feature(f)) {
			return nil, fmt.Errorf("unknown feature %q (known: %v)", f, Features())
		}
		fs = append(fs, Feature(f))
	}
	return fs, nil
}

// StartError is a subject that did not start, with what it printed; the
// output goes into the setup-failed report.
type StartError struct {
	Subject string
	Err     error
	Output  string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("subject %s did not start: %v", e.Subject, e.Err)
}
func (e *StartError) Unwrap() error { return e.Err }

// outputOf returns the output carried by a StartError in err's chain.
func outputOf(err error) string {
	if se, ok := errors.AsType[*StartError](err); ok {
		return se.Output
	}
	return ""
}
