package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/api"
	"github.com/plyr-fm/plyrtasks/export"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
	"github.com/plyr-fm/plyrtasks/tasks"
)

var exportRoutes = []struct{ method, path string }{
	{"POST", "/v1/exports"},
	{"POST", "/v1/exports/"},
	{"GET", "/v1/exports"},
	{"GET", "/v1/exports/{x}"},
	{"DELETE", "/v1/exports/{x}"},
}

// newFuzzAPI is the export API as plyrtasks serves it (mounted in the
// HTTP API) over a SQLite store holding one artist.
func newFuzzAPI(tb testing.TB) *api.API {
	st := storetest.SQLite(tb)
	if err := st.UpsertArtist(context.Background(), store.Artist{DID: artistDID, Handle: "alice.test"}); err != nil {
		tb.Fatal(err)
	}
	obj, err := storage.NewFile(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := export.New(export.Options{Store: st, Storage: obj, Enqueuer: &recordingEnqueuer{}})
	if err != nil {
		tb.Fatal(err)
	}
	a, err := api.New(api.Options{
		Enqueuer: api.EnqueuerFunc(func(context.Context, string, []byte, tasks.Opts) (api.Enqueued, error) {
			return api.Enqueued{}, errors.New("not used")
		}),
		Token:   "fuzz-token-0123456789",
		Exports: svc.HTTPHandler(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// FuzzHTTP: the export API, given any query, path segment and body,
// answers only 200, 202, 400, 404, 405, 409 or 413 (503 is a failed enqueue,
// and enqueues succeed here), always as JSON with "error" for 4xx and
// "field" for 400 and 413. A request body that is not exactly one JSON
// object is a 400, one over 4<<10 a 413. Nothing panics.
func FuzzHTTP(f *testing.F) {
	for i := range exportRoutes {
		f.Add(uint8(i), "", "", []byte(nil))
	}
	for _, b := range []string{
		`{"artist_did":"` + artistDID + `"}`, `{"artist_did":"alice"}`, `{"artist":"x"}`, `{"artist_did":"did:plc:nobody0000000000000000"}`,
		`{"artist_did":"` + artistDID + `"} trailing`, `{"artist_did":"` + artistDID + `"}{}`, `{"artist_did":null}`, `null`, `[]`, `{`, ``,
		`{"artist_did":1e400}`, "{\"artist_did\":\"did:plc:\xff\"}", `{"artist_did":"did:plc:x","artist_did":"did:plc:y"}`,
		`{"ARTIST_DID":"` + artistDID + `"}`, `{"artist_did":"` + artistDID + `"}` + strings.Repeat(" ", 4<<10),
		"{\"artist_did\":\"\x01" + strings.Repeat("d", 5<<10) + `"}`,
	} {
		f.Add(uint8(0), "", "", []byte(b))
	}
	for _, q := range []string{"artist_did=" + artistDID, "artist_did=" + artistDID + "&limit=100", "artist_did=x&limit=0", "artist_did=x&limit=101",
		"artist_did=x&limit=99999999999999999999", "artist_did=x&limit=-1", "limit=5", "artist_did=%zz", "artist_did=\xff"} {
		f.Add(uint8(2), q, "", []byte(nil))
	}
	for _, seg := range []string{"NOPE", "01HZX3", "%2F", "x y", "\xff", strings.Repeat("i", 300)} {
		f.Add(uint8(3), "", seg, []byte(nil))
		f.Add(uint8(4), "", seg, []byte(nil))
	}
	h := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, ri uint8, query, seg string, body []byte) {
		route := exportRoutes[int(ri)%len(exportRoutes)]
		if strings.Contains(route.path, "{x}") && (seg == "" || seg == "." || seg == "..") {
			return // path structure, not an ID
		}
		target := strings.Replace(route.path, "{x}", url.PathEscape(seg), 1)
		if query != "" {
			target += "?" + query
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http refuses such a request line before any handler
		}
		r := httptest.NewRequest(route.method, "/", bytes.NewReader(body))
		r.URL, r.RequestURI = u, target
		r.Header.Set("Authorization", "Bearer fuzz-token-0123456789")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if !slices.Contains([]int{200, 202, 400, 404, 405, 409, 413}, w.Code) {
			t.Fatalf("%s %s: status %d: %s", route.method, target, w.Code, w.Body)
		}
		var resp any
		if w.Header().Get("Content-Type") != "application/json" || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
			t.Fatalf("%s %s: %d answer is not JSON: %q", route.method, target, w.Code, w.Body)
		}
		if w.Code >= 400 {
			m, _ := resp.(map[string]any)
			msg, _ := m["error"].(string)
			field, _ := m["field"].(string)
			if msg == "" || ((w.Code == 400 || w.Code == 413) && field == "") {
				t.Fatalf("%s %s: %d without error and field: %s", route.method, target, w.Code, w.Body)
			}
		}
		if route.method != "POST" {
			return
		}
		trimmed := bytes.Trim(body, " \t\r\n")
		switch {
		case len(body) > export.MaxRequestBody:
			if w.Code != 413 {
				t.Fatalf("a %d-byte request body: status %d, want 413", len(body), w.Code)
			}
		case !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{':
			if w.Code != 400 {
				t.Fatalf("request body %q is not one JSON object: status %d, want 400", body, w.Code)
			}
		}
	})
}

// TestHTTPBodyRefusals are FuzzHTTP's findings on POST /v1/exports, each
// with its exact input: trailing data was ignored (the export started),
// and a body over the limit was a 400 "bad JSON" instead of a 413.
func TestHTTPBodyRefusals(t *testing.T) {
	tests := []struct {
		name, body string
		code       int
		field      string
	}{
		{"trailing data", `{"artist_did":"` + artistDID + `"} trailing`, 400, "(body)"},
		{"two objects", `{"artist_did":"` + artistDID + `"}{}`, 400, "(body)"},
		{"oversized", `{"artist_did":"` + artistDID + `"}` + strings.Repeat(" ", 4<<10), 413, "(body)"},
		{"oversized and malformed early", "{\"artist_did\":\"\x01" + strings.Repeat("d", 5<<10) + `"}`, 413, "(body)"},
		{"accepted", `{"artist_did":"` + artistDID + `"}`, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFuzzAPI(t)
			r := httptest.NewRequest("POST", "/v1/exports", strings.NewReader(tt.body))
			r.Header.Set("Authorization", "Bearer fuzz-token-0123456789")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body map[string]any
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if field, _ := body["field"].(string); w.Code != tt.code || field != tt.field {
				t.Fatalf("%d %s, want %d with field %q", w.Code, w.Body, tt.code, tt.field)
			}
		})
	}
}

// TestHTTPAnswersAreJSON: FuzzHTTP/8cc5922de788823d: DELETE
// /v1/exports/%2F (ServeMux takes it for /v1/exports/) answered a plain
// text 405; other unroutable requests a plain text 404.
func TestHTTPAnswersAreJSON(t *testing.T) {
	h := newFuzzAPI(t)
	tests := []struct {
		method, target string
		code           int
		allow          string
	}{
		{"DELETE", "/v1/exports/%2F?0", 405, "GET, POST"},
		{"PUT", "/v1/exports", 405, "GET, POST"},
		{"POST", "/v1/exports/x", 405, "GET, DELETE"},
		{"DELETE", "/v1/exports/x/events", 405, "GET"},
		{"GET", "/v1/exports/x/y/z", 404, ""},
	}
	for _, tt := range tests {
		u, _ := url.ParseRequestURI(tt.target)
		r := httptest.NewRequest(tt.method, "/", nil)
		r.URL, r.RequestURI = u, tt.target
		r.Header.Set("Authorization", "Bearer fuzz-token-0123456789")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var body map[string]any
		if w.Code != tt.code || w.Header().Get("Allow") != tt.allow || w.Header().Get("Content-Type") != "application/json" ||
			json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error"] == "" {
			t.Errorf("%s %s: %d %q %s; want %d JSON with Allow %q", tt.method, tt.target, w.Code, w.Header().Get("Content-Type"), w.Body, tt.code, tt.allow)
		}
	}
}
