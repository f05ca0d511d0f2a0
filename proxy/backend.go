package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// backend is one upstream as the proxy addresses it.
type backend struct {
	addr string // host:port to dial; IPv6 literals in brackets
	host string // Host header value: the port is left out when it is 80
}

// Errors a backend string is rejected with; parseBackend wraps them with the
// offending string.
var (
	errEmpty      = errors.New("empty")
	errSpace      = errors.New("contains whitespace")
	errScheme     = errors.New("unsupported scheme (only http and h2, both plain TCP)")
	errTLS        = errors.New("TLS is not supported: use http:// to a plaintext port")
	errUserinfo   = errors.New("userinfo (user@) is not allowed")
	errNoHost     = errors.New("missing host")
	errBadHost    = errors.New("invalid host name")
	errBareIPv6   = errors.New("IPv6 literal must be enclosed in brackets")
	errBadIPv6    = errors.New("invalid IPv6 literal")
	errPortRange  = errors.New("port out of range 1..65535")
	errPortSyntax = errors.New("invalid port")
)

// parseBackend accepts the seed's four forms: http://host:port (the path,
// query and fragment are ignored), h2://host:port (an alias of http: plain
// TCP speaking HTTP/1.1, no TLS, no HTTP/2), host:port and host (port 80).
// IPv6 literals are written in brackets. Schemes match case-insensitively
// (RFC 3986 §3.1).
func parseBackend(s string) (backend, error) {
	b, err := parseAuthority(s)
	if err != nil {
		return backend{}, fmt.Errorf("proxy: backend %q: %w", s, err)
	}
	return b, nil
}

func parseAuthority(s string) (backend, error) {
	if s == "" {
		return backend{}, errEmpty
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return backend{}, errSpace
	}
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "http", "h2":
		case "https", "h2s", "wss":
			return backend{}, errTLS
		default:
			return backend{}, fmt.Errorf("%w: %q", errScheme, scheme)
		}
		rest = after
	}
	// The authority ends where the path, query or fragment begins
	// (RFC 3986 §3.2); whatever follows is ignored.
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.Contains(rest, "@") {
		return backend{}, errUserinfo
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return backend{}, err
	}
	b := backend{addr: net.JoinHostPort(host, strconv.Itoa(port))}
	b.host = host
	if strings.Contains(host, ":") {
		b.host = "[" + host + "]"
	}
	if port != 80 {
		b.host += ":" + strconv.Itoa(port)
	}
	return b, nil
}

// splitHostPort splits an authority without userinfo into a host (an IPv6
// literal without brackets) and a port, 80 when absent.
func splitHostPort(hp string) (string, int, error) {
	var host, port string
	hasPort := false
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, errBadIPv6
		}
		host = hp[1:end]
		after := hp[end+1:]
		switch {
		case after == "":
		case after[0] == ':':
			port, hasPort = after[1:], true
		default:
			return "", 0, errBadIPv6
		}
		// A zone is written %25 inside a URL (RFC 6874).
		addr, err := netip.ParseAddr(strings.Replace(host, "%25", "%", 1))
		if err != nil || !addr.Is6() {
			return "", 0, fmt.Errorf("%w: %q", errBadIPv6, host)
		}
		// The zone goes into the Host header too: only RFC 6874's unreserved
		// characters, or net/http refuses every request to this backend.
		if z := addr.Zone(); z != "" && !validHostname(strings.ReplaceAll(z, "~", "")) {
			return "", 0, fmt.Errorf("%w: zone %q", errBadIPv6, z)
		}
		host = addr.String()
	} else {
		host = hp
		if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			host, port, hasPort = hp[:i], hp[i+1:], true
		}
		if strings.Contains(host, ":") {
			return "", 0, errBareIPv6
		}
		if host == "" {
			return "", 0, errNoHost
		}
		if !validHostname(host) {
			return "", 0, fmt.Errorf("%w: %q", errBadHost, host)
		}
	}
	if !hasPort {
		return host, 80, nil
	}
	if port == "" || strings.TrimLeft(port, "0123456789") != "" {
		return "", 0, fmt.Errorf("%w: %q", errPortSyntax, port)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		// Only digits got here, so this is a value too large for an int.
		return "", 0, fmt.Errorf("%w: %w", errPortRange, err)
	}
	if n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%w: %d", errPortRange, n)
	}
	return host, n, nil
}

// validHostname accepts reg-names made of letters, digits, '-', '.' and '_'
// (the underscore appears in container and service names) and IPv4 literals.
func validHostname(h string) bool {
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_':
		default:
			return false
		}
	}
	return true
}
