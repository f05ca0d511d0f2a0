package fakebackend

import (
	"fmt"
	"net"
)

// switchMode replaces whatever holds the port with what mode m needs. The
// port never changes: Serve listens again on the same address (net.Listen
// sets SO_REUSEADDR), so a proxy configured with the backend's address finds
// it again. Connections already accepted are not touched. Called with
// modeMu held.
func (s *Server) switchMode(m Mode) error {
	switch m {
	case Serve, Refuse, Blackhole:
	default:
		return fmt.Errorf("mode %q: want %q, %q or %q", m, Serve, Refuse, Blackhole)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.mode == m {
		s.mu.Unlock()
		return nil
	}
	ln, done, hold := s.ln, s.accepting, s.hold
	s.ln, s.hold, s.mode = nil, nil, ""
	s.mu.Unlock()

	if ln != nil {
		ln.Close()
		<-done
	}
	if hold != nil {
		hold.Close()
		// Serve keeps no hold; the closed one must not be stored again,
		// or the next switch closes its descriptor a second time, and with
		// it whatever socket of the process reused the number.
		hold = nil
	}
	var err error
	switch m {
	case Serve:
		var nl net.Listener
		if nl, err = net.Listen("tcp", s.addr.String()); err == nil {
			s.serve(nl)
		}
	case Refuse:
		hold, err = holdPort(s.addr, false)
	case Blackhole:
		hold, err = holdPort(s.addr, true)
	}
	if err != nil {
		// The port is released and the mode unknown; the next SetMode or
		// Reset tries again.
		return fmt.Errorf("mode %s on %s: %w", m, s.addr, err)
	}
	s.mu.Lock()
	s.mode, s.hold = m, hold
	s.mu.Unlock()
	return nil
}
