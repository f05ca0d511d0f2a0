package conformance

import (
	"context"
	"errors"
)

// Container is a subject run from a Docker image on the run's private
// network, reaching container backends by their aliases; it follows the
// same PROXYSPEC_* environment contract as Command.
//
// TODO(lead): implement on fakebackend/container's Run (same network as
// the backends, Config.Backends must be BackendsContainers, the proxy's
// port reached through its mapped host port, logs as Output). Until then
// every start is a setup failure that says so.
func Container(image string, lacks ...Feature) Subject {
	return containerSubject{image: image, lacks: lacks}
}

type containerSubject struct {
	image string
	lacks []Feature
}

// ErrNotImplemented is returned by subjects the kit cannot start yet.
var ErrNotImplemented = errors.New("not implemented")

func (s containerSubject) Name() string     { return s.image }
func (s containerSubject) Lacks() []Feature { return s.lacks }
func (s containerSubject) Start(context.Context, Topology) (Instance, error) {
	return nil, &StartError{Subject: s.image, Err: errors.Join(errors.New("container subjects"), ErrNotImplemented)}
}
