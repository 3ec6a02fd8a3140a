package httpauth

import (
	"net/http/httptest"
	"testing"
)

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{{"x", "x", true}, {"x", "y", false}, {"x", "xx", false}, {"", "", true}, {"", "x", false}}
	for _, tt := range tests {
		if got := Equal(tt.a, tt.b); got != tt.want {
			t.Errorf("Equal(%q,%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDirectLoopback(t *testing.T) {
	tests := []struct {
		name, remote, header, value string
		want                        bool
	}{
		{"v4 loopback", "127.0.0.1:1", "", "", true},
		{"other 127/8", "127.0.0.2:1", "", "", true},
		{"v6 loopback", "[::1]:1", "", "", true},
		{"private address", "10.0.0.1:1", "", "", false},
		{"public address", "203.0.113.1:1", "", "", false},
		{"proxied via X-Forwarded-For", "127.0.0.1:1", "X-Forwarded-For", "203.0.113.1", false},
		{"proxied via Forwarded", "127.0.0.1:1", "Forwarded", "for=203.0.113.1", false},
		{"proxied via X-Real-IP", "127.0.0.1:1", "X-Real-IP", "203.0.113.1", false},
		{"garbage address", "nonsense", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.header != "" {
				r.Header.Set(tt.header, tt.value)
			}
			if got := DirectLoopback(r); got != tt.want {
				t.Errorf("DirectLoopback = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		got, ok := BearerToken(r)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q,%v, want %q,%v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
