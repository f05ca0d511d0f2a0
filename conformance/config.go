package conformance

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Backend kinds for Config.Backends.
const (
	BackendsInProcess  = "inprocess"  // fake backends in this process
	BackendsContainers = "containers" // fake backends in containers on a private network
)

// Config is everything a run needs. The zero value of every field but
// Subject is usable: see the defaults on each field.
type Config struct {
	// Subject is the proxy under test. Required.
	Subject Subject
	// Profile selects the specs and their expectations; default ProfileSeed.
	Profile Profile
	// Backends says where fake backends run: BackendsInProcess (default) or
	// BackendsContainers.
	Backends string
	// LabelFilter is a Ginkgo label filter ("hop-by-hop && MUST") applied on
	// top of the profile. Labels are the feature, the level, the profiles and
	// any Meta.Labels of a spec.
	LabelFilter string
	// Focus, when set, is a regular expression: only specs whose ID it
	// matches run ("^hop-by-hop/request/", "forward/get-basic$").
	Focus string
	// ReportJSON, when set, is where the run's Report is written as JSON.
	ReportJSON string
	// JUnitReport, when set, is where Ginkgo's JUnit report is written.
	JUnitReport string
	// Scenarios are directories of user scenario files run next to the
	// built-in ones.
	Scenarios []string

	// ConnectTimeout and ReadTimeout are the proxy timeouts of topologies that
	// test timeouts (TopologyRequest.ShortConnect, ShortRead); defaults 200 ms
	// and 500 ms. Other topologies get ten times these, so that a loaded
	// machine never turns a plain forwarding spec into a timeout.
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// Margin multiplies every bound a spec derives from the topology's
	// timeouts before it gives up waiting; default 3.
	Margin float64
	// SpecTimeout is a last-resort bound on one spec; default one minute. It
	// does not count the wait for the backend pool (a first image build),
	// which has a bound of its own.
	SpecTimeout time.Duration

	// Output receives a line per finished spec and a summary table; nil
	// means no progress output (Ginkgo's own reporter still runs).
	Output io.Writer
}

// Defaults for Config.
const (
	DefaultConnectTimeout = 200 * time.Millisecond
	DefaultReadTimeout    = 500 * time.Millisecond
	DefaultMargin         = 3.0
	DefaultSpecTimeout    = time.Minute
	// relaxedFactor scales the short timeouts into those of topologies that
	// do not test timeouts.
	relaxedFactor = 10
)

// withDefaults returns c with defaults filled in, or an error naming the
// first bad field.
func (c Config) withDefaults() (Config, error) {
	if c.Subject == nil {
		return c, errors.New("conformance: Config.Subject is nil")
	}
	if c.Profile == "" {
		c.Profile = ProfileSeed
	}
	switch c.Profile {
	case ProfileSeed, ProfileRFC9110:
	default:
		return c, fmt.Errorf("conformance: unknown profile %q (want %q or %q)", c.Profile, ProfileSeed, ProfileRFC9110)
	}
	if c.Backends == "" {
		c.Backends = BackendsInProcess
	}
	switch c.Backends {
	case BackendsInProcess, BackendsContainers:
	default:
		return c, fmt.Errorf("conformance: unknown backends kind %q (want %q or %q)", c.Backends, BackendsInProcess, BackendsContainers)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.ConnectTimeout < 0 || c.ReadTimeout < 0 {
		return c, fmt.Errorf("conformance: negative timeout (connect %v, read %v)", c.ConnectTimeout, c.ReadTimeout)
	}
	if c.Margin == 0 {
		c.Margin = DefaultMargin
	}
	if c.Margin < 1 {
		return c, fmt.Errorf("conformance: margin %v is below 1", c.Margin)
	}
	if c.SpecTimeout == 0 {
		c.SpecTimeout = DefaultSpecTimeout
	}
	return c, nil
}
