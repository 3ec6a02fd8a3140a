package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Event stream timing.
const (
	// ssePoll is how often the event stream reads the job row (the worker
	// may be another process, so the row is the channel).
	ssePoll = 250 * time.Millisecond
	// sseKeepAlive is how often an idle stream sends a comment, so proxies
	// do not close it.
	sseKeepAlive = 15 * time.Second
)

// HTTPHandler serves the export API. Mount it, behind the API's bearer
// authentication, for both "/v1/exports" and "/v1/exports/" (paths are
// matched in full, so do not strip the prefix):
//
//	POST   /v1/exports             {"artist_did": "did:plc:…"} → 202 new job, 200 the active one
//	GET    /v1/exports?artist_did= the artist's exports, newest first
//	GET    /v1/exports/{id}        the export's State (fresh download URL once done)
//	GET    /v1/exports/{id}/events Server-Sent Events: "progress" events carrying
//	                               the State whenever it changes, then one "end"
//	                               event when the export is done, failed or cancelled
//	DELETE /v1/exports/{id}        cancel → 200 with the State; 409 when already finished
//
// Errors are JSON {"error": "…", "field": "…"} with 400 (bad field), 404,
// 409, 413 (a request body over MaxRequestBody) or 503 (the enqueue
// failed).
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/exports", s.handleRequest)
	mux.HandleFunc("POST /v1/exports/{$}", s.handleRequest)
	mux.HandleFunc("GET /v1/exports", s.handleList)
	mux.HandleFunc("GET /v1/exports/{$}", s.handleList)
	mux.HandleFunc("GET /v1/exports/{id}", s.handleGet)
	mux.HandleFunc("GET /v1/exports/{id}/events", s.handleEvents)
	mux.HandleFunc("DELETE /v1/exports/{id}", s.handleCancel)
	// Every answer is JSON, ServeMux's own 404 and 405 included (it takes
	// "/v1/exports/%2F" for "/v1/exports/", so DELETE on it was a plain
	// text 405).
	mux.HandleFunc("/v1/exports", methodNotAllowed("GET, POST"))
	mux.HandleFunc("/v1/exports/{$}", methodNotAllowed("GET, POST"))
	mux.HandleFunc("/v1/exports/{id}", methodNotAllowed("GET, DELETE"))
	mux.HandleFunc("/v1/exports/{id}/events", methodNotAllowed("GET"))
	mux.HandleFunc("/v1/exports/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method " + r.Method + " not allowed (allowed: " + allow + ")"})
	}
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError maps service errors to statuses.
func writeError(w http.ResponseWriter, err error) {
	var fe *tasks.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field})
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: err.Error()})
	case errors.Is(err, ErrNotActive):
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
	case errors.Is(err, job.ErrStruck):
		// An operator struck exports (of this artist): a refusal, as the
		// task API answers it.
		writeJSON(w, http.StatusLocked, errorBody{Error: err.Error(), Field: "artist_did"})
	case errors.Is(err, ErrEnqueue):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "task queue unavailable; try again later"})
	default:
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
	}
}

// MaxRequestBody bounds the body of POST /v1/exports; a larger one is a
// 413.
const MaxRequestBody = 4 << 10

func (s *Service) handleRequest(w http.ResponseWriter, r *http.Request) {
	// Read it whole first: the decoder alone stops after the object, so
	// an oversized body passed and trailing data was ignored.
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body too large: limit %d bytes", MaxRequestBody), Field: "(body)"})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "reading the body: " + err.Error(), Field: "(body)"})
		return
	}
	var body struct {
		ArtistDID string `json:"artist_did"`
	}
	if err := tasks.DecodeObject(raw, &body); err != nil {
		writeError(w, err) // a *tasks.FieldError: 400 naming the key
		return
	}
	j, created, err := s.Request(r.Context(), body.ArtistDID)
	if err != nil {
		switch {
		case errors.Is(err, job.ErrStruck), errors.As(err, new(*tasks.FieldError)), errors.Is(err, store.ErrNotFound):
		case errors.Is(err, ErrEnqueue):
			s.log.WarnContext(r.Context(), "export request: enqueue failed", "err", err)
		default:
			s.log.ErrorContext(r.Context(), "export request failed", "err", err)
		}
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	w.Header().Set("Location", "/v1/exports/"+j.ID)
	writeJSON(w, status, s.present(r.Context(), j))
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	did := r.URL.Query().Get("artist_did")
	if did == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "artist_did: is required", Field: "artist_did"})
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "limit: must be 1..100", Field: "limit"})
			return
		}
		limit = n
	}
	list, err := s.List(r.Context(), did, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"exports": list})
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	st, err := s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Service) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, err := s.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, StateOf(j))
}

// handleEvents streams the export's state until it ends or the client
// goes away. Each event's id is the row's update time in milliseconds.
func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	st, err := s.Get(ctx, id)
	if err != nil {
		writeError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a long stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", st.UpdatedAt.UnixMilli(), event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	poll := time.NewTicker(ssePoll)
	defer poll.Stop()
	lastSent := time.Now()
	var last []byte
	for {
		b, _ := json.Marshal(st)
		if string(b) != string(last) {
			if err := send("progress", st); err != nil {
				return // client gone
			}
			last, lastSent = b, time.Now()
		}
		if !st.Status.Active() {
			send("end", map[string]any{"export_id": st.ExportID, "status": st.Status})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
		if time.Since(lastSent) >= sseKeepAlive {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			lastSent = time.Now()
		}
		next, err := s.Get(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "export event stream: read job", "export_id", id, "err", err)
			}
			return
		}
		st = next
	}
}
