// Package bench measures proxies side by side: the reference proxy (one
// upstream connection per request, and pooled), net/http/httputil's
// ReverseProxy, nginx and HAProxy, all in front of the same two loopback
// backends, loaded by the same client (vegeta, as a library) in the same
// run, with a direct-to-backend run as the ceiling. It also compares the
// fake backend with a bare net/http server and measures the reference
// proxy's memory with 1 GiB bodies and 10 000 idle client connections.
//
// Every proxy and the backends run as separate processes, so that each
// one's peak RSS can be read from /proc and no garbage collector pauses
// another; the Go ones are this binary's "bench serve" mode. On a small
// machine they all share the same cores with the load generator, which is
// part of every figure: ratios measured in one run are what compares.
//
// Rounds are interleaved (every implementation once per round, in turn), so
// that load from elsewhere on the machine falls on all of them alike.
package bench
