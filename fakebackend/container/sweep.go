package container

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// sweep removes what crashed runs left behind: resources labelled by a run of
// this host whose owning process is gone. Runs of live processes — other test
// binaries running now — and of other hosts sharing the engine, whose pids
// mean nothing here, are left alone. It reports how many resources it
// removed.
func (r *Run) sweep(ctx context.Context) (int, error) {
	return r.remove(ctx, make(client.Filters).Add("label", LabelRun), r.abandoned)
}

// abandoned reports whether labels mark a resource of a dead run of this host.
func (r *Run) abandoned(labels map[string]string) bool {
	if labels[LabelRun] == r.id || labels[LabelHost] != r.hostname {
		return false
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return false // not ours to judge
	}
	return !alive(pid)
}

// alive reports whether a process with this pid exists. Signal 0 checks
// without sending: ESRCH means no such process; EPERM means one exists that
// we may not signal.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// remove deletes the containers, then the networks, then the images matching
// filter whose labels pass keep — in that order, since a network in use or an
// image with containers cannot go. Already gone is not an error.
func (r *Run) remove(ctx context.Context, filter client.Filters, keep func(map[string]string) bool) (int, error) {
	var errs []error
	n := 0
	gone := func(what, id string, err error) {
		switch {
		case err == nil:
			n++
		case !isNotFound(err):
			errs = append(errs, fmt.Errorf("remove %s %s: %w", what, id, err))
		}
	}

	cs, err := r.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return n, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs.Items {
		if keep(c.Labels) {
			_, err := r.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			gone("container", c.ID, err)
		}
	}

	nws, err := r.docker.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return n, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, nw := range nws.Items {
		if keep(nw.Labels) {
			_, err := r.docker.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{})
			gone("network", nw.Name, err)
		}
	}

	imgs, err := r.docker.ImageList(ctx, client.ImageListOptions{Filters: filter})
	if err != nil {
		return n, errors.Join(append(errs, fmt.Errorf("list images: %w", err))...)
	}
	for _, img := range imgs.Items {
		if keep(img.Labels) {
			_, err := r.docker.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			gone("image", img.ID, err)
		}
	}
	return n, errors.Join(errs...)
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
