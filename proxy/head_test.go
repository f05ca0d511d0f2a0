package proxy

import (
	"reflect"
	"testing"
)

func TestConnectionWatch(t *testing.T) {
	tests := map[string]struct {
		chunks []string
		want   []string
		done   bool
	}{
		"lines in order, any case": {
			[]string{"HTTP/1.1 200 OK\r\nConnection: close\r\ncOnNeCtIoN:  X-A , x-b\r\nX-A: 1\r\n\r\nbody Connection: no"},
			[]string{"close", "X-A , x-b"}, true,
		},
		"split across reads": {
			[]string{"HTTP/1.1 200 OK\r\nConn", "ection: close, X-", "A\r", "\n\r\n"},
			[]string{"close, X-A"}, true,
		},
		"a 1xx head's options are not the final one's": {
			[]string{"HTTP/1.1 103 Early Hints\r\nConnection: X-Early\r\n\r\nHTTP/1.1 200 OK\r\nConnection: X-Final\r\n\r\n"},
			[]string{"X-Final"}, true,
		},
		"bare LF line ends": {
			[]string{"HTTP/1.1 200 OK\nConnection: X-A\n\n"},
			[]string{"X-A"}, true,
		},
		"no Connection": {
			[]string{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
			nil, true,
		},
		"head not over yet": {
			[]string{"HTTP/1.1 200 OK\r\nConnection: X-A\r\n"},
			[]string{"X-A"}, false,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			w := newConnectionWatch()
			for _, c := range tt.chunks {
				w.observe([]byte(c))
			}
			got, done := w.connection()
			if !reflect.DeepEqual(got, tt.want) || done != tt.done {
				t.Errorf("connection() = %q, %v; want %q, %v", got, done, tt.want, tt.done)
			}
		})
	}
}
