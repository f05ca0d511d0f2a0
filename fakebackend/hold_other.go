//go:build !linux

package fakebackend

import (
	"errors"
	"fmt"
	"net"
)

// portHold is the portable fallback: Refuse just leaves the port closed
// (connects are refused, but another program could take the port), and
// Blackhole is not available.
type portHold struct{}

func holdPort(_ *net.TCPAddr, blackhole bool) (*portHold, error) {
	if blackhole {
		return nil, fmt.Errorf("blackhole needs Linux: %w", errors.ErrUnsupported)
	}
	return &portHold{}, nil
}

// Close releases the port.
func (*portHold) Close() error { return nil }
