//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: a read that
// does not wait finds nothing to read. End of stream means the backend
// closed it; bytes on an idle connection mean it is out of step with its
// requests. Either way it must not carry another one.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		n    int
		rerr error
		b    [1]byte
	)
	// The socket is non-blocking (the runtime's poller owns it), and
	// returning true from the callback means the read is not retried.
	if err := raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), b[:])
		return true
	}); err != nil {
		return false
	}
	return n < 0 && errors.Is(rerr, syscall.EAGAIN)
}
