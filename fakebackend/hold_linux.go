package fakebackend

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// portHold keeps a port bound while nothing serves it.
//
// Refuse: a TCP socket bound to the port and not listening. The kernel finds
// no listener for an incoming SYN and answers RST, so connect fails at once
// with ECONNREFUSED, and the port stays reserved (see bind for the limit).
//
// Blackhole: a socket listening with a backlog of 0 that is never accepted,
// with connections dialled into it until its accept queue is full. Linux
// drops a SYN for a listener whose accept queue is full (without answering,
// SYN cookies or not), so further connects time out. No root is needed.
type portHold struct {
	fd      int
	fillers []net.Conn
}

// fillLimit bounds the connections dialled to fill a blackhole's queue; with
// a backlog of 0 Linux needs one.
const fillLimit = 8

func holdPort(addr *net.TCPAddr, blackhole bool) (*portHold, error) {
	family, sa, err := sockaddr(addr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	h := &portHold{fd: fd}
	if err := h.bind(family, sa, addr, blackhole); err != nil {
		h.Close()
		return nil, err
	}
	if !blackhole {
		return h, nil
	}
	if err := syscall.Listen(fd, 0); err != nil {
		h.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := h.fill(addr); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

func (h *portHold) bind(family int, sa syscall.Sockaddr, addr *net.TCPAddr, listening bool) error {
	if family == syscall.AF_INET6 && addr.IP.IsUnspecified() {
		// Mirror net.Listen on "[::]": dual stack.
		if err := syscall.SetsockoptInt(h.fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
	}
	// A socket that will not listen first tries without SO_REUSEADDR: Linux
	// lets any other SO_REUSEADDR socket (net.Listen sets it) share a port
	// whose sockets all have it and none listens, which would let another
	// program take the port. That bind fails while connections accepted
	// earlier on the port, or their TIME_WAIT, remain; then SO_REUSEADDR is
	// needed, as it is for a listening socket, which nothing can share.
	if !listening {
		if err := syscall.Bind(h.fd, sa); err == nil {
			return nil
		} else if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("bind: %w", err)
		}
	}
	if err := syscall.SetsockoptInt(h.fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := syscall.Bind(h.fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

// fill dials into the listening socket until its accept queue is full.
func (h *portHold) fill(addr *net.TCPAddr) error {
	target := *addr
	if target.IP.IsUnspecified() {
		// 127.0.0.1 reaches a "[::]" socket too (bind made it dual stack),
		// and unlike ::1 it exists where IPv6 is off, as in most containers.
		target.IP = net.IPv4(127, 0, 0, 1)
	}
	for range fillLimit {
		full, err := h.queueFull()
		if err != nil || full {
			return err
		}
		// A loopback connect to a listener with room completes at once; one
		// that times out means the queue filled up meanwhile.
		c, err := net.DialTimeout("tcp", target.String(), time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return fmt.Errorf("fill accept queue: %w", err)
		}
		h.fillers = append(h.fillers, c)
	}
	if full, err := h.queueFull(); err != nil || full {
		return err
	}
	return fmt.Errorf("accept queue still has room after %d connections", fillLimit)
}

// queueFull reads the accept queue of the listening socket from TCP_INFO:
// for a listener Linux reports the queue length in tcpi_unacked and the
// backlog in tcpi_sacked, and drops SYNs once length > backlog.
func (h *portHold) queueFull() (bool, error) {
	var info syscall.TCPInfo
	size := uint32(syscall.SizeofTCPInfo)
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(h.fd), syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return false, fmt.Errorf("TCP_INFO: %w", errno)
	}
	return info.Unacked > info.Sacked, nil
}

// Close releases the port.
func (h *portHold) Close() error {
	for _, c := range h.fillers {
		c.Close()
	}
	return syscall.Close(h.fd)
}

func sockaddr(addr *net.TCPAddr) (int, syscall.Sockaddr, error) {
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: addr.Port}
		copy(sa.Addr[:], ip4)
		return syscall.AF_INET, sa, nil
	}
	if ip6 := addr.IP.To16(); ip6 != nil {
		sa := &syscall.SockaddrInet6{Port: addr.Port}
		copy(sa.Addr[:], ip6)
		if addr.Zone != "" {
			ifi, err := net.InterfaceByName(addr.Zone)
			if err != nil {
				return 0, nil, fmt.Errorf("zone %q: %w", addr.Zone, err)
			}
			sa.ZoneId = uint32(ifi.Index)
		}
		return syscall.AF_INET6, sa, nil
	}
	return 0, nil, fmt.Errorf("address %s: not IPv4 or IPv6", addr)
}
