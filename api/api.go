package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/plyr-fm/plyrtasks/internal/httpauth"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Options configure New.
type Options struct {
	// Enqueuer puts tasks on their queue. Required.
	Enqueuer Enqueuer
	// Tasks answers GET and DELETE /v1/tasks/{id}. When nil (no Redis)
	// those answer 503.
	Tasks *Tasks
	// Catalog holds the task types. Default tasks.All().
	Catalog *tasks.Catalog
	// Token is API_TOKEN. Empty: the API answers only direct loopback
	// callers (and New logs a warning).
	Token string
	// Exports, when set, is mounted at /v1/exports and /v1/exports/ behind
	// the same authentication, with the full request path.
	Exports http.Handler
	// Routes are more endpoints served behind the same authentication,
	// keyed by Go ServeMux pattern ("POST /v1/tasks/{id}/retry"): where the
	// task controls of package control are mounted. "DELETE /v1/tasks/{id}"
	// replaces the API's own cancel; any other pattern that clashes with
	// the API's own is an error from New.
	Routes map[string]http.Handler
	// Logger receives server-side errors and the no-token warning. Default:
	// discard.
	Logger *slog.Logger
}

// API is the HTTP API: an http.Handler for the /v1/ tree.
type API struct {
	o   Options
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the API.
func New(o Options) (_ *API, err error) {
	if o.Enqueuer == nil {
		return nil, errors.New("api: Options.Enqueuer is required")
	}
	if o.Catalog == nil {
		o.Catalog = tasks.All()
	}
	a := &API{o: o, log: o.Logger, mux: http.NewServeMux()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if o.Token == "" {
		a.log.Warn("API_TOKEN is not set: the HTTP API at /v1/ answers only direct requests from this machine (loopback); set API_TOKEN before exposing it")
	}
	a.mux.HandleFunc("POST /v1/tasks/{type}", a.enqueue)
	a.mux.HandleFunc("GET /v1/tasks/{id}", a.get)
	// The cancel is the task controls' (package control: it deletes a
	// waiting task, stops and archives a running one), mounted through
	// Routes; without them it is unavailable.
	if o.Routes[deleteRoute] == nil {
		a.mux.HandleFunc(deleteRoute, noControls)
	}
	a.mux.HandleFunc("/v1/tasks/{id}", methodNotAllowed("GET, POST, DELETE"))
	if o.Exports != nil {
		a.mux.Handle("/v1/exports", o.Exports)
		a.mux.Handle("/v1/exports/", o.Exports)
	}
	// ServeMux panics on a clashing pattern: report it as an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("api: Options.Routes: %v", r)
		}
	}()
	for _, pattern := range slices.Sorted(maps.Keys(o.Routes)) {
		a.mux.Handle(pattern, o.Routes[pattern])
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return a, nil
}

// ServeHTTP authenticates the caller and routes the request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		if a.o.Token == "" {
			// 401 like a wrong token (as config documents API_TOKEN), though
			// no token helps: only a direct loopback caller gets in.
			writeError(w, &Error{Status: http.StatusUnauthorized, Message: "API_TOKEN is not configured, so the API answers only direct requests from this machine"})
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="plyrtasks"`)
		writeError(w, &Error{Status: http.StatusUnauthorized, Message: "missing or wrong bearer token (Authorization: Bearer $API_TOKEN)"})
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *API) authorized(r *http.Request) bool {
	if a.o.Token == "" {
		return httpauth.DirectLoopback(r)
	}
	tok, ok := httpauth.BearerToken(r)
	return ok && httpauth.Equal(a.o.Token, tok)
}

// EnqueueResponse is the body of a 202 (and, with the existing ID, of a
// 409).
type EnqueueResponse struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Queue string `json:"queue"`
	State string `json:"state"`
	// Outcome is "enqueued", or "inline" when the task ran in the API's
	// process (fallback) and State is already completed or failed.
	Outcome string `json:"outcome"`
	// Error is an inline task's failure.
	Error string `json:"error,omitempty"`
}

func (a *API) enqueue(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("type")
	def, ok := a.o.Catalog.Lookup(kind)
	if !ok {
		writeError(w, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("unknown task type %q (known: %s)", kind, strings.Join(a.enqueueable(), ", ")), Field: "type"})
		return
	}
	if def.Internal {
		writeError(w, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("task type %q is internal (the worker schedules it) and cannot be enqueued", kind), Field: "type"})
		return
	}
	opts, err := ParseOptions(r.URL.Query())
	if err != nil {
		writeError(w, badRequest(err))
		return
	}
	// MaxBytesReader stops at the first byte past the limit: an oversized
	// body is refused without being read whole.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, tasks.MaxPayloadBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("payload too large: limit %d bytes", tasks.MaxPayloadBytes), Field: "(body)"})
			return
		}
		writeError(w, &Error{Status: http.StatusBadRequest, Message: "reading the body: " + err.Error(), Field: "(body)"})
		return
	}
	args, err := def.Decode(body)
	if err != nil {
		writeError(w, badRequest(err))
		return
	}
	payload, err := tasks.Encode(args)
	if err != nil {
		writeError(w, badRequest(err))
		return
	}
	res, err := a.o.Enqueuer.Enqueue(r.Context(), kind, payload, opts)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnavailable):
		a.log.Warn("api: enqueue refused: queue unavailable", "type", kind, "err", err)
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Message: "task queue unavailable; try again later"})
		return
	case errors.Is(err, job.ErrStruck):
		// An operator blocked this type (or this argument value): a
		// refusal, not a failure — 423 until it is restored.
		writeError(w, &Error{Status: http.StatusLocked, Message: err.Error(), Field: "type"})
		return
	case tasks.IsInvalid(err):
		if errors.Is(err, tasks.ErrPayloadTooLarge) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Message: err.Error(), Field: "(body)"})
			return
		}
		writeError(w, badRequest(err))
		return
	default:
		a.log.Error("api: enqueue failed", "type", kind, "err", err)
		writeError(w, &Error{Status: http.StatusInternalServerError, Message: "enqueue failed: " + err.Error()})
		return
	}
	resp := EnqueueResponse{ID: res.ID, Type: kind, Queue: res.Queue, State: res.State, Outcome: string(res.Outcome), Error: res.Error}
	if resp.Queue == "" {
		resp.Queue = def.Opts.Queue
		if opts.Queue != "" {
			resp.Queue = opts.Queue
		}
	}
	if res.Outcome == OutcomeDuplicate {
		writeError(w, &Error{Status: http.StatusConflict, Message: "duplicate: a task with the same unique key is already queued or running", ID: res.ID})
		return
	}
	if res.ID != "" && res.Outcome != OutcomeInline {
		w.Header().Set("Location", "/v1/tasks/"+res.ID)
	}
	writeJSON(w, http.StatusAccepted, resp)
}

func (a *API) enqueueable() []string {
	var out []string
	for _, d := range a.o.Catalog.Defs() {
		if !d.Internal {
			out = append(out, d.Kind)
		}
	}
	return out
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	if a.o.Tasks == nil {
		writeError(w, noQueue)
		return
	}
	st, err := a.o.Tasks.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, a.lookupError(err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// noControls answers DELETE /v1/tasks/{id} when no task controls are
// mounted (Options.Routes): cancelling is theirs.
func noControls(w http.ResponseWriter, _ *http.Request) {
	writeError(w, &Error{Status: http.StatusServiceUnavailable, Message: "task controls are not mounted in this process"})
}

const deleteRoute = "DELETE /v1/tasks/{id}"

var noQueue = &Error{Status: http.StatusServiceUnavailable, Message: "no task queue configured in this process"}

func (a *API) lookupError(err error) *Error {
	switch {
	case errors.Is(err, ErrTaskNotFound):
		return &Error{Status: http.StatusNotFound, Message: err.Error()}
	case tasks.IsInvalid(err):
		return badRequest(err) // a blank ID
	}
	a.log.Error("api: task lookup failed", "err", err)
	return &Error{Status: http.StatusServiceUnavailable, Message: "task queue unavailable: " + err.Error()}
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed (allowed: " + allow + ")"})
	}
}

// Error is the body of every error response, and the error Remote returns.
type Error struct {
	// Status is the HTTP status code (not in the body).
	Status int `json:"-"`
	// Message says what went wrong.
	Message string `json:"error"`
	// Field names the bad payload field or query parameter.
	Field string `json:"field,omitempty"`
	// Fields lists every invalid field when there are several.
	Fields []FieldProblem `json:"fields,omitempty"`
	// ID is the existing task of a duplicate (409).
	ID string `json:"id,omitempty"`
}

// FieldProblem is one invalid field.
type FieldProblem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
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

// badRequest turns a (possibly joined) *tasks.FieldError into a 400 naming
// the first field and listing all.
func badRequest(err error) *Error {
	e := &Error{Status: http.StatusBadRequest, Message: err.Error()}
	for _, fe := range fieldErrors(err) {
		e.Fields = append(e.Fields, FieldProblem{Field: fe.Field, Reason: fe.Reason})
	}
	if len(e.Fields) > 0 {
		e.Field = e.Fields[0].Field
		e.Message = e.Fields[0].Field + ": " + e.Fields[0].Reason
		if len(e.Fields) == 1 {
			e.Fields = nil
		}
	}
	return e
}

func fieldErrors(err error) []*tasks.FieldError {
	if fe, ok := err.(*tasks.FieldError); ok {
		return []*tasks.FieldError{fe}
	}
	var out []*tasks.FieldError
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			out = append(out, fieldErrors(inner)...)
		}
	}
	return out
}

func writeError(w http.ResponseWriter, e *Error) { writeJSON(w, e.Status, e) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
