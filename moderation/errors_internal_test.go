package moderation

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"12", 12 * time.Second},
		{" 3 ", 3 * time.Second},
		{"999999", time.Hour},
		{"Fri, 02 Jan 2026 03:05:05 GMT", time.Minute},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestErrorBody(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"{\"error\":\n  \"bad\"}\n", `{"error": "bad"}`},
		{"a\x00\xffb", "a\x00b"},
		{strings.Repeat("y", 600), strings.Repeat("y", 512) + "…"},
	}
	for _, tt := range tests {
		if got := errorBody([]byte(tt.in)); got != tt.want {
			t.Errorf("errorBody(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
