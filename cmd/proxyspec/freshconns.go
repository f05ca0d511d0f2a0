package main

import (
	"net"
	"net/http"
	"sync"
)

// freshConns tracks a server's connections that have not read a byte of a
// request yet. http.Server.Shutdown counts those as busy for five seconds
// (a client may be slow to send), and net/http's Transport leaves one
// behind whenever a request it was dialling for took an idle connection
// instead; closing them when Shutdown starts lets a stop be prompt. A
// request already sent on one but not read is lost, as it would be had
// it come a moment later to the closed listener.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// track is an http.Server ConnState hook.
func (f *freshConns) track(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != http.StateNew {
		delete(f.conns, c)
		return
	}
	if f.conns == nil {
		f.conns = make(map[net.Conn]struct{})
	}
	f.conns[c] = struct{}{}
}

// close closes every tracked connection; it suits RegisterOnShutdown.
func (f *freshConns) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
}
