package conformance

import (
	"context"
	"fmt"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// backendPool starts fake backends for topologies, wherever they run.
type backendPool interface {
	start(ctx context.Context, name string) (fakebackend.Backend, error)
	// url is the URL the subject must use to reach b (a container subject
	// reaches container backends by their network alias, not the host port).
	url(b fakebackend.Backend) string
	close() error
}

func newPool(cfg *Config) (backendPool, error) {
	switch cfg.Backends {
	case BackendsInProcess:
		return inProcess{}, nil
	case BackendsContainers:
		return newContainerPool(cfg)
	}
	return nil, fmt.Errorf("conformance: unknown backends kind %q", cfg.Backends)
}

// inProcess runs fake backends in this process, on loopback.
type inProcess struct{}

func (inProcess) start(_ context.Context, name string) (fakebackend.Backend, error) {
	return fakebackend.Start(name)
}

func (inProcess) url(b fakebackend.Backend) string { return b.URL() }
func (inProcess) close() error                     { return nil }
