// Package moderationtest runs a local server on loopback that implements the
// moderation service's and the labeler's wire contracts, for tests of code
// that talks to them: POST /scan, POST /internal/events and
// POST /internal/negated-labels, each behind the X-Moderation-Key check.
//
// Answers are scripted: a scan answers with the body set for its audio_url
// (recorded-style AuDD answers ship in testdata, see Answer), negated-labels
// with the URIs marked by Negate, and any endpoint can be made to fail, stall
// or answer garbage for its next calls with Script. Stalled answers end as
// soon as the client gives up, so no test waits on them.
package moderationtest

import (
	"embed"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/moderation"
)

// Endpoints the server implements.
const (
	Scan    = "/scan"
	Events  = "/internal/events"
	Negated = "/internal/negated-labels"
)

//go:embed testdata/*.json
var answers embed.FS

// Answer returns the recorded-style moderation answer testdata/name.json:
// clean, below_threshold, dominant, dj_mix, self_match, malformed (cut off
// mid-JSON), missing_fields (no dominant_match_pct, no
// sustained_song_count).
func Answer(name string) []byte {
	b, err := answers.ReadFile("testdata/" + name + ".json")
	if err != nil {
		panic("moderationtest: no answer " + name)
	}
	return b
}

// Reply is one scripted answer.
type Reply struct {
	Status int         // default 200
	Body   []byte      // default: the endpoint's normal answer when Status is 2xx
	Header http.Header // extra headers (Retry-After, …)
	// Delay holds the answer back this long, or until the client gives up.
	Delay time.Duration
}

// Event is a labeler event as received.
type Event struct {
	SubjectURI     string `json:"subject_uri"`
	SubjectTrackID int64  `json:"subject_track_id"`
	Action         string `json:"action"`
	Actor          string `json:"actor"`
	Reason         string `json:"reason"`
	Notes          string `json:"notes"`
}

// Server is the fake moderation service and labeler.
type Server struct {
	*httptest.Server
	key string

	mu        sync.Mutex
	scans     map[string][]byte  // audio_url → answer body
	scripts   map[string][]Reply // endpoint → next replies
	calls     map[string]int
	scanned   []string
	events    []Event
	negated   map[string]bool
	batches   [][]string
	wrongKeys int
}

// NewServer starts a server on 127.0.0.1 that accepts key, closed when t
// ends.
func NewServer(t testing.TB, key string) *Server {
	s := &Server{
		key:     key,
		scans:   map[string][]byte{},
		scripts: map[string][]Reply{},
		calls:   map[string]int{},
		negated: map[string]bool{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// SetAnswer makes scans of audioURL answer body (an Answer, say). A scan of
// a URL without an answer gets 422 {"error": "..."}.
func (s *Server) SetAnswer(audioURL string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans[audioURL] = body
}

// Script queues replies for the next calls to endpoint, in order; once they
// are used up the endpoint behaves normally again.
func (s *Server) Script(endpoint string, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[endpoint] = append(s.scripts[endpoint], replies...)
}

// Negate marks URIs as explicitly negated at the labeler.
func (s *Server) Negate(uris ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uris {
		s.negated[u] = true
	}
}

// Calls returns how many requests reached endpoint (wrong keys included).
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// Scanned returns the audio URLs of accepted scan requests, in order.
func (s *Server) Scanned() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.scanned...)
}

// Events returns the labeler events recorded so far, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Batches returns the URI lists of accepted negated-labels requests.
func (s *Server) Batches() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.batches...)
}

// WrongKeys returns how many requests were refused for their key.
func (s *Server) WrongKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wrongKeys
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	s.mu.Lock()
	s.calls[path]++
	var script *Reply
	if q := s.scripts[path]; len(q) > 0 {
		script, s.scripts[path] = &q[0], q[1:]
	}
	s.mu.Unlock()

	switch path {
	case Scan, Events, Negated:
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	if r.Header.Get(moderation.KeyHeader) != s.key {
		s.mu.Lock()
		s.wrongKeys++
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid or missing X-Moderation-Key"})
		return
	}
	// Reading the whole body first lets the server notice a client that gives
	// up (its background read sees the close), which ends a stalled answer.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unreadable body"})
		return
	}
	if script != nil {
		if script.Delay > 0 {
			select {
			case <-time.After(script.Delay):
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range script.Header {
			w.Header()[k] = v
		}
		status := script.Status
		if status == 0 {
			status = http.StatusOK
		}
		if script.Body != nil || status < 200 || status > 299 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(script.Body)
			return
		}
	}
	switch path {
	case Scan:
		s.serveScan(w, body)
	case Events:
		s.serveEvent(w, body)
	case Negated:
		s.serveNegated(w, body)
	}
}

func (s *Server) serveScan(w http.ResponseWriter, body []byte) {
	var req struct {
		AudioURL string `json:"audio_url"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.AudioURL == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "audio_url is required"})
		return
	}
	s.mu.Lock()
	answer, ok := s.scans[req.AudioURL]
	if ok {
		s.scanned = append(s.scanned, req.AudioURL)
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "audd could not fetch the audio"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

func (s *Server) serveEvent(w http.ResponseWriter, body []byte) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil || e.SubjectURI == "" || e.Action == "" || e.Actor == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "subject_uri, action and actor are required"})
		return
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	id := len(s.events)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}

func (s *Server) serveNegated(w http.ResponseWriter, body []byte) {
	var req struct {
		URIs []string `json:"uris"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.URIs == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "uris is required"})
		return
	}
	s.mu.Lock()
	s.batches = append(s.batches, req.URIs)
	out := []string{}
	for _, u := range req.URIs {
		if s.negated[u] {
			out = append(out, u)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string][]string{"negated_uris": out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
