package proxy

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseBackendForms(t *testing.T) {
	for _, tc := range []struct {
		in, addr, host string
	}{
		{"http://backend-1:8080", "backend-1:8080", "backend-1:8080"},
		{"http://backend-1:8080/ignored/path?q=1#f", "backend-1:8080", "backend-1:8080"},
		{"HTTP://Backend:8080", "Backend:8080", "Backend:8080"},
		{"h2://10.0.0.7:9000", "10.0.0.7:9000", "10.0.0.7:9000"},
		{"H2://10.0.0.7:9000", "10.0.0.7:9000", "10.0.0.7:9000"},
		{"127.0.0.1:9001", "127.0.0.1:9001", "127.0.0.1:9001"},
		{"api-service", "api-service:80", "api-service"},
		{"http://api-service", "api-service:80", "api-service"},
		{"api_service:80", "api_service:80", "api_service"},
		{"[::1]:8080", "[::1]:8080", "[::1]:8080"},
		{"http://[::1]", "[::1]:80", "[::1]"},
		{"http://[2001:db8::1]:80/x", "[2001:db8::1]:80", "[2001:db8::1]"},
		{"host:65535", "host:65535", "host:65535"},
		{"host:1", "host:1", "host:1"},
		{"host:0080", "host:80", "host"},
	} {
		b, err := parseBackend(tc.in)
		if err != nil {
			t.Errorf("parseBackend(%q): %v", tc.in, err)
			continue
		}
		if b.addr != tc.addr || b.host != tc.host {
			t.Errorf("parseBackend(%q) = addr %q host %q, want addr %q host %q", tc.in, b.addr, b.host, tc.addr, tc.host)
		}
	}
}

func TestParseBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", errEmpty},
		{" host:80", errSpace},
		{"host:80 ", errSpace},
		{"ho st", errSpace},
		{"http://host:80\n", errSpace},
		{"https://host:443", errTLS},
		{"ftp://host", errScheme},
		{"http://user:pw@host:80", errUserinfo},
		{"user@host", errUserinfo},
		{"http://:8080", errNoHost},
		{"http://", errNoHost},
		{"host:0", errPortRange},
		{"host:65536", errPortRange},
		{"host:99999999999999999999", errPortRange},
		{"host:", errPortSyntax},
		{"host:-1", errPortSyntax},
		{"host:80a", errPortSyntax},
		{"::1", errBareIPv6},
		{"http://::1:8080", errBareIPv6},
		{"[::1", errBadIPv6},
		{"[::1]x", errBadIPv6},
		{"[10.0.0.1]:80", errBadIPv6},
		{"[::1]:", errPortSyntax},
		{"ho$t:80", errBadHost},
	} {
		_, err := parseBackend(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("parseBackend(%q) = %v, want %v", tc.in, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(tc.in)) {
			t.Errorf("parseBackend(%q) error %q does not name the backend", tc.in, err)
		}
	}
}

func TestNewRejectsBadBackendNamingIt(t *testing.T) {
	_, err := New([]string{"http://ok:1", "https://secure:443"})
	if err == nil || !strings.Contains(err.Error(), `"https://secure:443"`) || !errors.Is(err, errTLS) {
		t.Fatalf("New = %v, want an error naming \"https://secure:443\" and wrapping errTLS", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Option{
		"prefix without slash": WithPathPrefix("api"),
		"prefix with query":    WithPathPrefix("/api?x"),
		"prefix not clean":     WithPathPrefix("/a/../b"),
		"zero connect timeout": WithConnectTimeout(0),
		"negative read":        WithReadTimeout(-1),
		"nil strategy":         WithStrategy(nil),
		"nil logger":           WithLogger(nil),
		"nil wrapper":          WithRoundTripper(nil),
	} {
		if _, err := New(nil, o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
