// Package reference wires the reference proxy into the conformance suite as
// a Handler subject. It lives apart from both so that conformance never
// imports proxy: the reference is plugged in like any other implementation.
package reference

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/proxy"
)

// Subject is the reference proxy, built fresh for each topology. Its attempt
// logs go to logs (io.Discard when nil), so a run's output stays readable.
func Subject(logs io.Writer, opts ...proxy.Option) conformance.Subject {
	return conformance.Handler("reference", func(t conformance.Topology) (http.Handler, error) {
		return New(t, logs, opts...)
	})
}

// New builds the reference proxy for a topology.
func New(t conformance.Topology, logs io.Writer, opts ...proxy.Option) (*proxy.ReverseProxy, error) {
	if logs == nil {
		logs = io.Discard
	}
	urls := make([]string, len(t.Backends))
	for i, b := range t.Backends {
		urls[i] = b.URL
	}
	all := []proxy.Option{
		proxy.WithPathPrefix(t.PathPrefix),
		proxy.WithConnectTimeout(t.ConnectTimeout),
		proxy.WithReadTimeout(t.ReadTimeout),
		proxy.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
	}
	return proxy.New(urls, append(all, opts...)...)
}
