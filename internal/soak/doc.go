// Package soak holds the reference proxy's soak test: a long, bounded run
// of concurrent GET and POST requests through the proxy to fake backends
// that fail at random, which shows that nothing accumulates (goroutines,
// file descriptors, memory), that every request gets exactly one answer,
// and that no non-idempotent request is ever delivered twice.
//
// Bounds come from the environment: PROXYSPEC_SOAK_REQUESTS (default 3000)
// and PROXYSPEC_SOAK_DURATION (default 20s), whichever is reached first.
// ci/soak.sh runs the long bound (100 000 requests or 5 minutes).
//
// To find out why an outcome was wrong: PROXYSPEC_SOAK_LOG=file gets the
// proxy's log (one line per request, every failed attempt), and
// PROXYSPEC_SOAK_STACKS=file every goroutine's stack the first time a
// request waits five read timeouts.
package soak
