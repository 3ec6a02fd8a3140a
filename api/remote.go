package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// Remote is a Go client of this API: what the CLI uses against a running
// `plyrtasks serve`.
type Remote struct {
	// BaseURL is the server's root, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is sent as the bearer token when non-empty.
	Token string
	// HTTP is the client to use. Default: one with a 30s timeout.
	HTTP *http.Client
}

// Enqueue posts payload as a task of kind with opts. A non-2xx answer is an
// *Error (409 carries the existing task's ID).
func (c *Remote) Enqueue(ctx context.Context, kind string, payload []byte, opts tasks.Opts) (*EnqueueResponse, error) {
	u := "/v1/tasks/" + url.PathEscape(kind)
	if q := Values(opts).Encode(); q != "" {
		u += "?" + q
	}
	var out EnqueueResponse
	if err := c.do(ctx, http.MethodPost, u, payload, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns a task's status.
func (c *Remote) Get(ctx context.Context, id string) (*TaskStatus, error) {
	var out TaskStatus
	if err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Cancel cancels a task.
func (c *Remote) Cancel(ctx context.Context, id string) (*CancelResult, error) {
	var out CancelResult
	if err := c.do(ctx, http.MethodDelete, "/v1/tasks/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Remote) do(ctx context.Context, method, path string, body []byte, out any) error {
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
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		e.Status = resp.StatusCode
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// StatusCode returns the HTTP status of an *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
