package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/api"
	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// fuzzRoutes are the control routes FuzzHTTP drives; {x} is the fuzzed
// path segment.
var fuzzRoutes = []struct{ method, path string }{
	{"GET", "/v1/tasks"},
	{"POST", "/v1/strikes"},
	{"DELETE", "/v1/strikes"},
	{"GET", "/v1/strikes"},
	{"GET", "/v1/tasks/{x}"},
	{"POST", "/v1/tasks/{x}/retry"},
	{"POST", "/v1/tasks/{x}/cancel"},
	{"POST", "/v1/queues/{x}/pause"},
	{"POST", "/v1/queues/{x}/resume"},
	{"GET", "/v1/queues"},
}

// FuzzHTTP: the control routes (mounted in the HTTP API as plyrtasks
// serves them), given any query, path segment and body,
// answer only 200, 201, 400, 404, 409 or 413 (503 means Redis failed, and
// it is up here), always as JSON with "error" for 4xx and "field" for 400
// and 413. A strike body that is not exactly one JSON object is a 400, one
// over the limit a 413. Nothing panics.
func FuzzHTTP(f *testing.F) {
	for i := range fuzzRoutes {
		f.Add(uint8(i), "", "", []byte(nil))
	}
	for _, q := range []string{
		"state=pending", "state=archived&page=2&page_size=1", "page=9223372036854775807", "page=4611686018427387905&page_size=4",
		"page=2305843009213693953&page_size=8", "page=-1", "page_size=0", "page_size=101", "page=1e3", "queue=nosuch",
		"queue=plyr:default", "type=pds:like", "type=pds:like&page=9223372036854775807", "state=failed", "%zz", "state=pending&state=retry",
	} {
		f.Add(uint8(0), q, "", []byte(nil))
	}
	for _, q := range []string{"type=pds:like", "type=pds:like&arg=like_id=1", "type=", "type=pds:like&arg==", "type=a|b", "arg=x=y"} {
		f.Add(uint8(2), q, "", []byte(nil))
	}
	for _, b := range []string{
		`{"type":"pds:like","reason":"spam"}`, `{"type":"export:media","arg":"artist_did=did:plc:bad","reason":"under review","by":"alice"}`,
		`{"type":"copyright:scan","arg":"track_id=042","reason":"x"}`, `{"type":"pds:like","arg":"=","reason":"x"}`,
		`{"type":"pds:like","reason":"x"} trailing`, `{"type":"pds:like","reason":"x"}{}`, `{"type":"pds:like","reason":"x","who":"me"}`,
		`{"type":"pds:like","type":"pds:unlike","reason":"x"}`, `null`, `[]`, `{`, ``, `{"type":1e400}`, "{\"type\":\"\xff\",\"reason\":\"x\"}",
		`{"type":"pds:like","reason":"` + strings.Repeat("r", 17<<10) + `"}`,
		`{"type":"pds:like","reason":"x"}` + strings.Repeat(" ", 16<<10),
	} {
		f.Add(uint8(1), "", "", []byte(b))
	}
	for _, seg := range []string{"nope", "critical", "plyr:default", "%2F", "x y", "\xff", strings.Repeat("i", 300)} {
		for i := 4; i < 9; i++ {
			f.Add(uint8(i), "", seg, []byte(nil))
		}
	}

	rc := srv.Client(f, srv.DB(f))
	ctl := control.New(rc, control.Options{Namespace: ns, Logger: logging.Discard(), CancelWait: 100 * time.Millisecond})
	// Served as in production: mounted in the HTTP API, whose own routes
	// and JSON 404 surround it.
	h, err := api.New(api.Options{
		Enqueuer: api.EnqueuerFunc(func(context.Context, string, []byte, tasks.Opts) (api.Enqueued, error) {
			return api.Enqueued{}, errors.New("not used")
		}),
		Tasks:  api.NewTasks(rc, ns),
		Token:  "fuzz-token-0123456789",
		Routes: ctl.Routes(),
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	seedTasks(f, rc)
	f.Fuzz(func(t *testing.T, ri uint8, query, seg string, body []byte) {
		route := fuzzRoutes[int(ri)%len(fuzzRoutes)]
		path := strings.Replace(route.path, "{x}", url.PathEscape(seg), 1)
		if seg == "." || seg == ".." || (strings.Contains(route.path, "{x}") && seg == "") {
			return // path structure, not a parameter: ServeMux redirects or routes elsewhere
		}
		target := path
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

		if !slices.Contains([]int{200, 201, 400, 404, 409, 413}, w.Code) {
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
		if route.path == "/v1/strikes" && route.method == "POST" {
			checkStrikeBody(t, body, w.Code)
			if w.Code == 201 {
				var st strikes.Strike
				_ = json.Unmarshal(w.Body.Bytes(), &st)
				if _, err := ctl.Restore(ctx, st.Rule); err != nil {
					t.Fatalf("restore the strike just made (%s): %v", st.Key, err)
				}
			}
		}
		if route.method == "POST" && strings.HasSuffix(route.path, "/pause") && w.Code == 200 {
			_, _ = ctl.Resume(ctx, seg) // keep the seeded queues listable
		}
	})
}

// checkStrikeBody: only exactly one JSON object within the limit is
// parsed; anything else is refused as the body's fault.
func checkStrikeBody(t *testing.T, body []byte, code int) {
	t.Helper()
	trimmed := bytes.Trim(body, " \t\r\n")
	switch {
	case len(body) > control.MaxStrikeBody:
		if code != 413 {
			t.Fatalf("a %d-byte strike body: status %d, want 413", len(body), code)
		}
	case !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{':
		if code != 400 {
			t.Fatalf("strike body %q is not one JSON object: status %d, want 400", body, code)
		}
	}
}

// seedTasks puts tasks in several states in every queue, so that listing
// has something to page through.
func seedTasks(tb testing.TB, rc *redis.Client) {
	aq := asynq.NewClientFromRedisClient(rc)
	insp := asynq.NewInspectorFromRedisClient(rc)
	for _, q := range []string{"critical", "default", "bulk"} {
		for i := 0; i < 3; i++ {
			if _, err := aq.Enqueue(asynq.NewTask("pds:like", []byte(`{}`)), asynq.Queue(ns+":"+q)); err != nil {
				tb.Fatal(err)
			}
		}
		if _, err := aq.Enqueue(asynq.NewTask("export:media", []byte(`{}`)), asynq.Queue(ns+":"+q), asynq.ProcessIn(time.Hour)); err != nil {
			tb.Fatal(err)
		}
		info, err := aq.Enqueue(asynq.NewTask("copyright:scan", []byte(`{}`)), asynq.Queue(ns+":"+q))
		if err != nil {
			tb.Fatal(err)
		}
		if err := insp.ArchiveTask(info.Queue, info.ID); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestHTTPRefusals are FuzzHTTP's findings, each with its exact input.
func TestHTTPRefusals(t *testing.T) {
	e := newEnv(t, false)
	seedTasks(t, e.rc)
	h := e.ctl.HTTPHandler()
	tests := []struct {
		name, method, target, body string
		code                       int
		field                      string
	}{
		// A page far enough out overflowed (page-1)*page_size into a
		// negative offset, which panicked slicing asynq's page.
		{"page overflows the offset", "GET", "/v1/tasks?page=4611686018427387905&page_size=4", "", 400, "page"},
		{"largest page", "GET", "/v1/tasks?page=9223372036854775807", "", 400, "page"},
		{"large page with a type filter", "GET", "/v1/tasks?type=pds:like&page=9223372036854775807", "", 400, "page"},
		// Trailing data after the strike object was ignored, and a body
		// over the limit was cut and reported as bad JSON.
		{"trailing data", "POST", "/v1/strikes", `{"type":"pds:like","reason":"x"} trailing`, 400, "(body)"},
		{"two objects", "POST", "/v1/strikes", `{"type":"pds:like","reason":"x"}{}`, 400, "(body)"},
		{"oversized", "POST", "/v1/strikes", `{"type":"pds:like","reason":"x"}` + strings.Repeat(" ", 16<<10), 413, "(body)"},
		// FuzzHTTP/9db94f3ae034ae36: oversized and malformed within its
		// first 16 KiB gave 400: the size must win, as for enqueues.
		{"oversized and malformed early", "POST", "/v1/strikes", "{\"type\":\"pds:like\",\"reason\":\"\x01" + strings.Repeat("r", 17<<10) + `"}`, 413, "(body)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body map[string]string
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.code || body["field"] != tt.field {
				t.Fatalf("%d %s, want %d with field %q", w.Code, w.Body, tt.code, tt.field)
			}
		})
	}
	// The last page that can exist still answers.
	r := httptest.NewRequest("GET", "/v1/tasks?page="+strconv.Itoa(control.MaxPage)+"&page_size=100", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("page %d: %d %s", control.MaxPage, w.Code, w.Body)
	}
}
