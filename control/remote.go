package control

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/plyr-fm/plyrtasks/internal/jsonhttp"
	"github.com/plyr-fm/plyrtasks/strikes"
)

// Remote runs the controls through the HTTP API of a running plyrtasks
// (the CLI's --api mode). Errors are *Error, which unwraps to ErrNotFound,
// ErrConflict or a *tasks.FieldError like a Controller's.
type Remote struct {
	// BaseURL is the server's root, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is sent as the bearer token when non-empty.
	Token string
	// By names who strikes (StrikeRequest.By).
	By string
	// HTTP is the client to use. Default: one with a 30s timeout.
	HTTP *http.Client
}

var _ Controls = (*Remote)(nil)

// List calls GET /v1/tasks.
func (r *Remote) List(ctx context.Context, o ListOptions) (*TaskPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": o.State, "type": o.Type, "queue": o.Queue} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Page != 0 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	if o.PageSize != 0 {
		q.Set("page_size", strconv.Itoa(o.PageSize))
	}
	return call[TaskPage](ctx, r, http.MethodGet, withQuery("/v1/tasks", q), nil)
}

// Show calls GET /v1/tasks/{id}.
func (r *Remote) Show(ctx context.Context, id string) (*Task, error) {
	return call[Task](ctx, r, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil)
}

// Retry calls POST /v1/tasks/{id}/retry.
func (r *Remote) Retry(ctx context.Context, id string) (*Task, error) {
	return call[Task](ctx, r, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/retry", nil)
}

// Cancel calls POST /v1/tasks/{id}/cancel.
func (r *Remote) Cancel(ctx context.Context, id string) (*CancelResult, error) {
	return call[CancelResult](ctx, r, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/cancel", nil)
}

// Queues calls GET /v1/queues.
func (r *Remote) Queues(ctx context.Context) ([]QueueInfo, error) {
	return value(call[[]QueueInfo](ctx, r, http.MethodGet, "/v1/queues", nil))
}

// Pause calls POST /v1/queues/{queue}/pause.
func (r *Remote) Pause(ctx context.Context, queue string) (*QueueInfo, error) {
	return call[QueueInfo](ctx, r, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/pause", nil)
}

// Resume calls POST /v1/queues/{queue}/resume.
func (r *Remote) Resume(ctx context.Context, queue string) (*QueueInfo, error) {
	return call[QueueInfo](ctx, r, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/resume", nil)
}

// Strikes calls GET /v1/strikes.
func (r *Remote) Strikes(ctx context.Context) ([]strikes.Strike, error) {
	return value(call[[]strikes.Strike](ctx, r, http.MethodGet, "/v1/strikes", nil))
}

// Strike calls POST /v1/strikes.
func (r *Remote) Strike(ctx context.Context, rule strikes.Rule, reason string) (strikes.Strike, error) {
	body, err := json.Marshal(StrikeRequest{Type: rule.Kind, Arg: rule.Arg(), Reason: reason, By: r.By})
	if err != nil {
		return strikes.Strike{}, err
	}
	return value(call[strikes.Strike](ctx, r, http.MethodPost, "/v1/strikes", body))
}

// Restore calls DELETE /v1/strikes?type=&arg=.
func (r *Remote) Restore(ctx context.Context, rule strikes.Rule) (strikes.Strike, error) {
	q := url.Values{"type": {rule.Kind}}
	if a := rule.Arg(); a != "" {
		q.Set("arg", a)
	}
	return value(call[strikes.Strike](ctx, r, http.MethodDelete, withQuery("/v1/strikes", q), nil))
}

// call does one request and decodes its answer into a new T.
func call[T any](ctx context.Context, r *Remote, method, path string, body []byte) (*T, error) {
	var out T
	if err := r.do(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func value[T any](p *T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return *p, nil
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (r *Remote) do(ctx context.Context, method, path string, body []byte, out any) error {
	hc := jsonhttp.Client{BaseURL: r.BaseURL, Token: r.Token, HTTP: r.HTTP}
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
