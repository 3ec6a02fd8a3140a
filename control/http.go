package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Routes HTTPHandler serves (Go 1.22 ServeMux patterns). The API mounts
// MountRoutes(): all but ShowRoute, which it serves itself with the same
// JSON.
const (
	ListRoute   = "GET /v1/tasks"
	ShowRoute   = "GET /v1/tasks/{id}"
	RetryRoute  = "POST /v1/tasks/{id}/retry"
	CancelRoute = "POST /v1/tasks/{id}/cancel"
	// DeleteRoute is the API's DELETE /v1/tasks/{id}, the same cancel.
	DeleteRoute  = "DELETE /v1/tasks/{id}"
	QueuesRoute  = "GET /v1/queues"
	PauseRoute   = "POST /v1/queues/{queue}/pause"
	ResumeRoute  = "POST /v1/queues/{queue}/resume"
	StrikesRoute = "GET /v1/strikes"
	StrikeRoute  = "POST /v1/strikes"
	RestoreRoute = "DELETE /v1/strikes"
)

// MountRoutes returns the routes an API that already serves GET
// /v1/tasks/{id} mounts, each to HTTPHandler().
func MountRoutes() []string {
	return []string{ListRoute, RetryRoute, CancelRoute, DeleteRoute, QueuesRoute, PauseRoute, ResumeRoute, StrikesRoute, StrikeRoute, RestoreRoute}
}

// Routes maps each of MountRoutes() to HTTPHandler(): what api.Options.Routes
// takes.
func (c *Controller) Routes() map[string]http.Handler {
	h := c.HTTPHandler()
	out := make(map[string]http.Handler, len(MountRoutes()))
	for _, r := range MountRoutes() {
		out[r] = h
	}
	return out
}

// Error is the body of every error answer (the HTTP API's shape), and the
// error Remote returns.
type Error struct {
	// Status is the HTTP status (not in the body).
	Status int `json:"-"`
	// Message says what went wrong.
	Message string `json:"error"`
	// Field names the bad parameter.
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	s := e.Message
	if e.Field != "" && !strings.HasPrefix(s, e.Field+":") {
		s = e.Field + ": " + s
	}
	if e.Status != 0 {
		s = fmt.Sprintf("%s (HTTP %d)", s, e.Status)
	}
	return s
}

// Unwrap maps the status back to the package's errors, so callers of
// Remote test errors as with a Controller.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusBadRequest:
		return &tasks.FieldError{Field: e.Field, Reason: strings.TrimPrefix(e.Message, e.Field+": ")}
	}
	return nil
}

// StrikeRequest is the body of POST /v1/strikes.
type StrikeRequest struct {
	// Type is the task type to strike.
	Type string `json:"type"`
	// Arg is "field=value" to strike only tasks with that argument.
	Arg string `json:"arg,omitempty"`
	// Reason is required: it is shown on every task the strike stops.
	Reason string `json:"reason"`
	// By names who strikes (recorded as "api:<by>"; "api" when empty).
	By string `json:"by,omitempty"`
}

// HTTPHandler serves the controls under /v1/ (see the *Route constants).
// It does no authentication: mount it behind the API's bearer token.
// Errors are JSON {"error", "field"}: 400 for bad input (naming the
// parameter), 404 for an unknown task, queue or strike, 409 for an
// operation the task's state does not allow, 413 for a strike body over
// MaxStrikeBody, 503 when Redis fails.
func (c *Controller) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(ListRoute, c.serveList)
	mux.HandleFunc(ShowRoute, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(c.Show(r.Context(), r.PathValue("id")))
	})
	mux.HandleFunc(RetryRoute, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(c.Retry(r.Context(), r.PathValue("id")))
	})
	cancel := func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(c.Cancel(r.Context(), r.PathValue("id")))
	}
	mux.HandleFunc(CancelRoute, cancel)
	mux.HandleFunc(DeleteRoute, cancel)
	mux.HandleFunc(QueuesRoute, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(c.Queues(r.Context()))
	})
	mux.HandleFunc(PauseRoute, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(c.Pause(r.Context(), r.PathValue("queue")))
	})
	mux.HandleFunc(ResumeRoute, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusOK)(c.Resume(r.Context(), r.PathValue("queue")))
	})
	mux.HandleFunc(StrikesRoute, func(w http.ResponseWriter, r *http.Request) {
		list, err := c.Strikes(r.Context())
		if list == nil && err == nil {
			list = []strikes.Strike{}
		}
		answer(w, http.StatusOK)(list, err)
	})
	mux.HandleFunc(StrikeRoute, c.serveStrike)
	mux.HandleFunc(RestoreRoute, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rule, err := strikes.ParseRule(q.Get("type"), q.Get("arg"))
		if err != nil {
			writeError(w, err)
			return
		}
		answer(w, http.StatusOK)(c.Restore(r.Context(), rule))
	})
	return mux
}

func (c *Controller) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := ListOptions{State: q.Get("state"), Type: q.Get("type"), Queue: q.Get("queue")}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"page", &o.Page}, {"page_size", &o.PageSize}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, &tasks.FieldError{Field: p.name, Reason: fmt.Sprintf("must be a whole number, got %q", v)})
				return
			}
			*p.dst = n
		}
	}
	answer(w, http.StatusOK)(c.List(r.Context(), o))
}

// MaxStrikeBody bounds the body of POST /v1/strikes; a larger one is a
// 413.
const MaxStrikeBody = 16 << 10

func (c *Controller) serveStrike(w http.ResponseWriter, r *http.Request) {
	// Read it whole first: a body over the limit is a 413 whatever its
	// first bytes say (LimitReader used to cut it and parse the rest).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxStrikeBody))
	if err != nil {
		if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("body too large: limit %d bytes", MaxStrikeBody), Field: "(body)"})
			return
		}
		writeError(w, &tasks.FieldError{Field: "(body)", Reason: "reading the body: " + err.Error()})
		return
	}
	var req StrikeRequest
	if err := tasks.DecodeObject(body, &req); err != nil {
		writeError(w, err)
		return
	}
	rule, err := strikes.ParseRule(req.Type, req.Arg)
	if err != nil {
		writeError(w, err)
		return
	}
	by := "api"
	if b := strings.TrimSpace(req.By); b != "" {
		by += ":" + b
	}
	st, err := c.Strike(strikes.WithActor(r.Context(), by), rule, req.Reason)
	answer(w, http.StatusCreated)(st, err)
}

// answer writes v with status ok, or err as an error answer.
func answer(w http.ResponseWriter, ok int) func(v any, err error) {
	return func(v any, err error) {
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, ok, v)
	}
}

func writeError(w http.ResponseWriter, err error) {
	e := &Error{Status: http.StatusServiceUnavailable, Message: "task queue unavailable: " + err.Error()}
	var fe *tasks.FieldError
	switch {
	case errors.As(err, &fe):
		e = &Error{Status: http.StatusBadRequest, Message: fe.Field + ": " + fe.Reason, Field: fe.Field}
	case errors.Is(err, ErrNotFound):
		e = &Error{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, ErrConflict):
		e = &Error{Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		e = &Error{Status: http.StatusServiceUnavailable, Message: "request cancelled"}
	}
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
