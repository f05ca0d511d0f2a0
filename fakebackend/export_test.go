package fakebackend

import "context"

// WaitConns blocks until cond holds for the connections recorded, for tests
// that must await a close without polling.
func (s *Server) WaitConns(ctx context.Context, cond func([]Conn) bool) ([]Conn, error) {
	snap, err := s.rec.waitFor(ctx, func(_ int, conns []Conn, _ Stats) bool { return cond(conns) })
	return snap.conns, err
}
