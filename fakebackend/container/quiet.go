package container

import (
	"sync"

	tclog "github.com/testcontainers/testcontainers-go/log"
)

// stockLogger is testcontainers' process-wide logger as it comes, before
// anyone could replace it.
var stockLogger = tclog.Default()

var quietOnce sync.Once

// quietTestcontainers silences testcontainers' process-wide logger, which
// prints a banner about the engine to stderr on first contact, unless the
// program set its own: a run logs only where WithLog says. The logger is
// global, so this cannot follow one run's WithLog.
func quietTestcontainers() {
	quietOnce.Do(func() {
		if tclog.Default() == stockLogger {
			tclog.SetDefault(tclog.NewNoopLogger())
		}
	})
}
