package conformance

import "time"

// DelayPoolStart makes the first use of the backend pool wait d, as a cold
// image build does.
func DelayPoolStart(d time.Duration) {
	next := startPool
	startPool = func(cfg *Config) (backendPool, error) {
		time.Sleep(d)
		return next(cfg)
	}
}
