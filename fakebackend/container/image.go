package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// commandPackage is the binary every backend container runs. Building it by
// import path works from any module that requires ours.
const commandPackage = "github.com/proxyspec/proxyspec/cmd/proxyspec"

// imageRepo is the repository part of a run's image reference; the tag is the
// run id.
const imageRepo = "proxyspec"

// dockerfile wraps the static binary and nothing else: there is no registry
// to pull a base image from, and a fake backend needs no more.
const dockerfile = `FROM scratch
COPY proxyspec /proxyspec
ENTRYPOINT ["/proxyspec"]
`

// buildImage builds the run's image from binary, or from a fresh static build
// of commandPackage when binary is empty.
func (r *Run) buildImage(ctx context.Context, binary string) error {
	dir, err := os.MkdirTemp("", "proxyspec-image-")
	if err != nil {
		return fmt.Errorf("container: image context: %w", err)
	}
	defer os.RemoveAll(dir)

	dst := filepath.Join(dir, "proxyspec")
	if binary == "" {
		if err := r.built(ctx, dst); err != nil {
			return err
		}
	} else if err := copyFile(dst, binary); err != nil {
		return fmt.Errorf("container: binary %s: %w", binary, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return fmt.Errorf("container: image context: %w", err)
	}

	req := testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        dir,
		Repo:           imageRepo,
		Tag:            r.id,
		BuildLogWriter: io.Discard,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			o.Labels = r.labels(nil)
			o.Remove, o.ForceRemove = true, true // no intermediate containers left behind
		},
	}}
	if _, err := r.provider.BuildImage(ctx, &req); err != nil {
		return fmt.Errorf("container: build image %s: %w", r.image, err)
	}
	return nil
}

// built writes to dst the binary built for this process's first run: the
// sources do not change under a running process, and a second build of the
// same binary, cached or not, costs seconds of linking.
func (r *Run) built(ctx context.Context, dst string) error {
	binMu.Lock()
	defer binMu.Unlock()
	if bin == nil {
		if err := r.goBuild(ctx, dst); err != nil {
			return err
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			return fmt.Errorf("container: read built binary: %w", err)
		}
		bin = b
		return nil
	}
	return os.WriteFile(dst, bin, 0o755)
}

// bin is the binary built for the first run of this process; binMu
// serialises builds, so concurrent first runs build once.
var (
	binMu sync.Mutex
	bin   []byte
)

// goBuild builds a static binary for the engine's platform: a scratch image
// has no libc, and the engine may run another architecture than this host
// (Docker Desktop on arm64 Macs, say).
func (r *Run) goBuild(ctx context.Context, dst string) error {
	arch := runtime.GOARCH
	if info, err := r.docker.Info(ctx, client.InfoOptions{}); err == nil {
		arch = goArch(info.Info.Architecture, arch)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", dst, commandPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("container: go build %s for linux/%s: %w\n%s", commandPackage, arch, err, out.Bytes())
	}
	return nil
}

// goArch maps an engine's architecture, as `uname -m` says it, to GOARCH.
func goArch(machine, fallback string) string {
	switch machine {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l":
		return "arm"
	case "s390x", "ppc64le", "riscv64":
		return machine
	}
	return fallback
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
