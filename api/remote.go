package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/plyr-fm/plyrtasks/internal/jsonhttp"
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
	hc := jsonhttp.Client{BaseURL: c.BaseURL, Token: c.Token, HTTP: c.HTTP}
	return hc.Do(ctx, method, path, body, out, func(status int, answer []byte) error {
		e := &Error{}
		if json.Unmarshal(answer, e) != nil {
			e.Message = "" // not the API's JSON (a proxy's page): the raw answer is the message
		}
		e.Message = jsonhttp.Message(e.Message, answer)
		e.Status = status
		return e
	})
}

// StatusCode returns the HTTP status of an *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
