package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// The newcomer run: with no serve running, the CLI said only
// "dial tcp 127.0.0.1:8080: connect: connection refused".
func TestErrorHintForNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = net.Dial("tcp", addr)
	if err == nil {
		t.Skip("something answered on a closed port")
	}
	wrapped := fmt.Errorf("status: %w", err)
	if h := errorHint(wrapped); !strings.Contains(h, "plyrtasks serve") {
		t.Errorf("hint = %q, want it to mention plyrtasks serve", h)
	}
	if h := errorHint(fmt.Errorf("other")); h != "" {
		t.Errorf("hint for an unrelated error = %q, want none", h)
	}
}
