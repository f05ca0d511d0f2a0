package container

import (
	"errors"
	"fmt"
	"os"
)

// ErrNoDocker is returned by NewRun when no Docker engine answers. A test
// that needs containers skips with one line:
//
//	if errors.Is(err, container.ErrNoDocker) { t.Skip(err) }
//
// With PROXYSPEC_REQUIRE_DOCKER=1 in the environment (CI), the same failure
// is returned without ErrNoDocker in its chain, so that line lets the test
// fail instead of skipping.
var ErrNoDocker = errors.New("container: no Docker engine")

// RequireDockerEnv names the variable that turns a missing engine into a
// failure rather than a skip.
const RequireDockerEnv = "PROXYSPEC_REQUIRE_DOCKER"

func noDocker(cause error) error {
	if os.Getenv(RequireDockerEnv) == "1" {
		return fmt.Errorf("container: Docker is required (%s=1) but unusable: %w", RequireDockerEnv, cause)
	}
	return fmt.Errorf("%w: %w", ErrNoDocker, cause)
}

// setEnvDefaults configures testcontainers-go for this kit unless the user
// already did. It must run before testcontainers reads its configuration,
// which it does once per process.
//   - The reaper (Ryuk) is off: its image cannot be pulled where there is no
//     registry, and a Run removes what it made by label itself, crashed runs
//     included (see sweep).
//   - Inside a container whose engine is reached on a local socket, mapped
//     ports are on localhost, not on the bridge gateway testcontainers would
//     otherwise guess.
func setEnvDefaults() {
	setDefault("TESTCONTAINERS_RYUK_DISABLED", "true")
	if _, err := os.Stat("/.dockerenv"); err == nil {
		setDefault("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
}

func setDefault(key, value string) {
	if _, ok := os.LookupEnv(key); !ok {
		os.Setenv(key, value)
	}
}
