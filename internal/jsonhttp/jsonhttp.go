// Package jsonhttp is the request plumbing the Go clients of plyrtasks'
// HTTP API share (api.Remote for enqueue and status, control.Remote for the
// task controls): one JSON request with the bearer token, a bounded read of
// the answer, and the answer decoded or turned into the caller's error type.
package jsonhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxAnswer bounds how much of an answer is read.
const MaxAnswer = 4 << 20

// DefaultTimeout bounds a request when Client.HTTP is nil.
const DefaultTimeout = 30 * time.Second

// Client is one API endpoint.
type Client struct {
	BaseURL string
	Token   string       // sent as "Authorization: Bearer …" when set
	HTTP    *http.Client // nil: a client with DefaultTimeout
}

// Do sends body (JSON; nil for none) with method to path and decodes a 2xx
// answer into out. Any other status becomes answerErr(status, answer): the
// caller's error type, which usually decodes the API's {"error","field"}.
func (c Client) Do(ctx context.Context, method, path string, body []byte, out any, answerErr func(status int, answer []byte) error) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("api request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerErr(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// Message is an error answer's text for the caller's error type: msg when
// the answer held one, else the answer itself (a proxy's HTML page, say),
// trimmed.
func Message(msg string, answer []byte) string {
	if msg != "" {
		return msg
	}
	return strings.TrimSpace(string(answer))
}
