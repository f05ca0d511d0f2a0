package conformance

import "errors"

// newContainerPool would run fake backends as containers on a private Docker
// network (fakebackend/container).
//
// TODO(lead): wire fakebackend/container once it lands: one Run per process,
// Start per backend, url = the in-network URL for a Container subject and the
// host-mapped URL otherwise, close = Run.Close.
func newContainerPool(*Config) (backendPool, error) {
	return nil, errors.New("conformance: container backends are not implemented yet")
}
