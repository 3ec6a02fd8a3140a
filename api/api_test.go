package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const testToken = "s3cret-token"

type fixture struct {
	api  *API
	rdb  *redis.Client
	insp *asynq.Inspector
	c    *asynq.Client
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	rdb := srv.Client(t, srv.DB(t))
	f := &fixture{rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb), c: asynq.NewClientFromRedisClient(rdb)}
	if o.Enqueuer == nil {
		o.Enqueuer = ClientEnqueuer(newClient(t, rdb, client.Options{}), "plyr")
	}
	if o.Tasks == nil {
		o.Tasks = NewTasks(rdb, "plyr")
	}
	if o.Routes == nil {
		// As serve mounts them: the cancel is the task controls'.
		o.Routes = control.New(rdb, control.Options{Namespace: "plyr", Logger: slog.New(slog.DiscardHandler)}).Routes()
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.api = a
	return f
}

type call struct {
	method, path, body string
	token              string // "" = none
	remote             string // "" = httptest default (192.0.2.1)
}

func (f *fixture) do(t *testing.T, c call) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.remote != "" {
		r.RemoteAddr = c.remote
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", c.method, c.path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", c.method, c.path, w.Body.String())
	}
	return w, body
}

const scan = `{"track_id":42,"audio_url":"https://cdn.example/a.mp3"}`

func TestEnqueue(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name      string
		path      string
		body      string
		token     string
		code      int
		field     string // for 4xx
		state     string // for 202
		queue     string
		wantRetry int // max_retry of the stored task, when >= 0
	}{
		{name: "enqueued", path: "/v1/tasks/copyright:scan", body: scan, code: 202, state: "pending", queue: "default", wantRetry: 8},
		{name: "delay", path: "/v1/tasks/copyright:scan?delay=10s", body: scan, code: 202, state: "scheduled", queue: "default", wantRetry: 8},
		{name: "process_at", path: "/v1/tasks/copyright:scan?process_at=" + future, body: scan, code: 202, state: "scheduled", queue: "default", wantRetry: 8},
		{name: "options", path: "/v1/tasks/copyright:scan?queue=critical&max_retry=0&timeout=30s&task_id=abc-1", body: scan, code: 202, state: "pending", queue: "critical", wantRetry: 0},
		{name: "no token", path: "/v1/tasks/copyright:scan", body: scan, token: "-", code: 401, wantRetry: -1},
		{name: "wrong token", path: "/v1/tasks/copyright:scan", body: scan, token: "nope", code: 401, wantRetry: -1},
		{name: "unknown type", path: "/v1/tasks/nope:nothing", body: `{}`, code: 404, field: "type", wantRetry: -1},
		{name: "internal type", path: "/v1/tasks/copyright:sync-resolutions", body: `{}`, code: 404, field: "type", wantRetry: -1},
		{name: "missing field", path: "/v1/tasks/copyright:scan", body: `{"audio_url":"https://x.example/a"}`, code: 400, field: "track_id", wantRetry: -1},
		{name: "wrong type", path: "/v1/tasks/copyright:scan", body: `{"track_id":"42","audio_url":"https://x.example/a"}`, code: 400, field: "track_id", wantRetry: -1},
		{name: "unknown field", path: "/v1/tasks/copyright:scan", body: `{"track_id":1,"audio_url":"https://x.example/a","token":"x"}`, code: 400, field: "token", wantRetry: -1},
		{name: "not JSON", path: "/v1/tasks/copyright:scan", body: `{"track_id":`, code: 400, field: "(body)", wantRetry: -1},
		{name: "trailing data", path: "/v1/tasks/copyright:scan", body: scan + `{}`, code: 400, field: "(body)", wantRetry: -1},
		{name: "bad delay", path: "/v1/tasks/copyright:scan?delay=soon", body: scan, code: 400, field: "delay", wantRetry: -1},
		{name: "negative delay", path: "/v1/tasks/copyright:scan?delay=-1s", body: scan, code: 400, field: "delay", wantRetry: -1},
		{name: "delay and process_at", path: "/v1/tasks/copyright:scan?delay=1s&process_at=" + future, body: scan, code: 400, field: "process_at", wantRetry: -1},
		{name: "bad process_at", path: "/v1/tasks/copyright:scan?process_at=tomorrow", body: scan, code: 400, field: "process_at", wantRetry: -1},
		{name: "sub-second timeout", path: "/v1/tasks/copyright:scan?timeout=500ms", body: scan, code: 400, field: "timeout", wantRetry: -1},
		{name: "fractional unique_for", path: "/v1/tasks/copyright:scan?unique_for=1.5s", body: scan, code: 400, field: "unique_for", wantRetry: -1},
		{name: "max_retry too big", path: "/v1/tasks/copyright:scan?max_retry=1000", body: scan, code: 400, field: "max_retry", wantRetry: -1},
		{name: "max_retry not a number", path: "/v1/tasks/copyright:scan?max_retry=three", body: scan, code: 400, field: "max_retry", wantRetry: -1},
		{name: "unknown queue", path: "/v1/tasks/copyright:scan?queue=fast", body: scan, code: 400, field: "queue", wantRetry: -1},
		{name: "bad task_id", path: "/v1/tasks/copyright:scan?task_id=a%20b", body: scan, code: 400, field: "task_id", wantRetry: -1},
		{name: "unknown parameter", path: "/v1/tasks/copyright:scan?delay_s=3", body: scan, code: 400, field: "delay_s", wantRetry: -1},
		{name: "repeated parameter", path: "/v1/tasks/copyright:scan?queue=bulk&queue=critical", body: scan, code: 400, field: "queue", wantRetry: -1},
		{name: "payload at the limit is parsed", path: "/v1/tasks/copyright:scan", body: scan + strings.Repeat(" ", tasks.MaxPayloadBytes-len(scan)), code: 202, state: "pending", queue: "default", wantRetry: 8},
		{name: "payload one byte over", path: "/v1/tasks/copyright:scan", body: scan + strings.Repeat(" ", tasks.MaxPayloadBytes-len(scan)+1), code: 413, field: "(body)", wantRetry: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{Token: testToken})
			tok := testToken
			switch tt.token {
			case "-":
				tok = ""
			case "":
			default:
				tok = tt.token
			}
			w, body := f.do(t, call{method: "POST", path: tt.path, body: tt.body, token: tok})
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code >= 400 {
				if body["error"] == nil || body["error"] == "" {
					t.Errorf("error response without an error message: %s", w.Body)
				}
				if got, _ := body["field"].(string); got != tt.field {
					t.Errorf("field = %q, want %q (%s)", got, tt.field, w.Body)
				}
				// Nothing reached Redis.
				if qs, _ := f.insp.Queues(); len(qs) != 0 {
					t.Errorf("queues %v exist after a refused enqueue", qs)
				}
				return
			}
			id, _ := body["id"].(string)
			if id == "" || body["type"] != "copyright:scan" || body["state"] != tt.state || body["queue"] != tt.queue || body["outcome"] != "enqueued" {
				t.Fatalf("body = %s, want id, state %s, queue %s", w.Body, tt.state, tt.queue)
			}
			if loc := w.Header().Get("Location"); loc != "/v1/tasks/"+id {
				t.Errorf("Location = %q", loc)
			}
			info, err := f.insp.GetTaskInfo("plyr:"+tt.queue, id)
			if err != nil {
				t.Fatalf("task not in Redis: %v", err)
			}
			if info.MaxRetry != tt.wantRetry || info.State.String() != tt.state {
				t.Errorf("stored task: max_retry %d state %s, want %d %s", info.MaxRetry, info.State, tt.wantRetry, tt.state)
			}
			var p tasks.CopyrightScanArgs
			if err := json.Unmarshal(info.Payload, &p); err != nil || p.TrackID != 42 {
				t.Errorf("stored payload %q", info.Payload)
			}
		})
	}
}

func TestEnqueueDuplicate(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	w, first := f.do(t, call{method: "POST", path: "/v1/tasks/copyright:scan", body: scan, token: testToken})
	if w.Code != 202 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	// Same track, another URL: copyright:scan is unique per track.
	w, dup := f.do(t, call{method: "POST", path: "/v1/tasks/copyright:scan", body: `{"track_id":42,"audio_url":"https://cdn.example/b.mp3"}`, token: testToken})
	if w.Code != 409 || dup["id"] != first["id"] {
		t.Fatalf("duplicate: %d %s, want 409 with id %v", w.Code, w.Body, first["id"])
	}
}

func TestEnqueueUnavailable(t *testing.T) {
	// An Enqueuer over a Redis that is not there: the API answers 503.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	f := newFixture(t, Options{Token: testToken, Enqueuer: ClientEnqueuer(newClient(t, dead, client.Options{EnqueueTimeout: time.Second}), "plyr")})
	w, body := f.do(t, call{method: "POST", path: "/v1/tasks/copyright:scan", body: scan, token: testToken})
	if w.Code != 503 || !strings.Contains(body["error"].(string), "unavailable") {
		t.Fatalf("%d %s, want 503", w.Code, w.Body)
	}
}

func TestNoTokenMeansLoopbackOnly(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, Options{Logger: slogTo(&logs)})
	if !strings.Contains(logs.String(), "API_TOKEN is not set") {
		t.Errorf("no warning logged: %q", logs.String())
	}
	tests := []struct {
		name, remote string
		code         int
	}{
		{"loopback", "127.0.0.1:3000", 202},
		{"outside", "198.51.100.9:3000", 401},
		{"proxied", "127.0.0.1:3000", 401},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/v1/tasks/pds:unlike", strings.NewReader(`{"session_id":"s","like_uri":"at://did:plc:x/fm.plyr.like/1"}`))
		r.RemoteAddr = tt.remote
		if tt.name == "proxied" {
			r.Header.Set("X-Forwarded-For", "203.0.113.5")
		}
		w := httptest.NewRecorder()
		f.api.ServeHTTP(w, r)
		if w.Code != tt.code {
			t.Errorf("%s: %d, want %d: %s", tt.name, w.Code, tt.code, w.Body)
		}
	}
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	tests := []struct {
		method, path string
		code         int
	}{
		{"PUT", "/v1/tasks/abc", 405},
		{"GET", "/v1/nothing", 404},
		{"GET", "/v2/tasks/abc", 404},
	}
	for _, tt := range tests {
		w, body := f.do(t, call{method: tt.method, path: tt.path, token: testToken})
		if w.Code != tt.code || body["error"] == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tt.method, tt.path, w.Code, w.Body, tt.code)
		}
	}
}

func TestExportsMountedBehindAuth(t *testing.T) {
	exports := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"path": r.URL.Path})
	})
	f := newFixture(t, Options{Token: testToken, Exports: exports})
	w, body := f.do(t, call{method: "GET", path: "/v1/exports/ex1/events", token: testToken})
	if w.Code != 200 || body["path"] != "/v1/exports/ex1/events" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w, _ = f.do(t, call{method: "GET", path: "/v1/exports/ex1"})
	if w.Code != 401 {
		t.Fatalf("unauthenticated export request: %d", w.Code)
	}
}

func TestGetAndCancel(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	ctx := context.Background()
	enq := func(t *testing.T, queue string, opts ...asynq.Option) string {
		t.Helper()
		info, err := f.c.EnqueueContext(ctx, asynq.NewTask("pds:comment-create", []byte(`{"session_id":"s","text":"private words","comment_id":1}`)), append(opts, asynq.Queue(queue), asynq.MaxRetry(4))...)
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	pending := enq(t, "plyr:critical")
	scheduled := enq(t, "plyr:default", asynq.ProcessIn(time.Hour))
	foreign := enq(t, "other:critical")

	t.Run("get pending", func(t *testing.T) {
		w, body := f.do(t, call{method: "GET", path: "/v1/tasks/" + pending, token: testToken})
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		want := map[string]any{"id": pending, "type": "pds:comment-create", "queue": "critical", "state": "pending", "attempts": 0.0, "max_retry": 4.0}
		for k, v := range want {
			if body[k] != v {
				t.Errorf("%s = %v, want %v", k, body[k], v)
			}
		}
		if strings.Contains(w.Body.String(), "private words") {
			t.Errorf("comment text leaked: %s", w.Body)
		}
		if p, _ := body["payload"].(map[string]any); p["text"] != tasks.Redacted || p["session_id"] != "s" {
			t.Errorf("payload = %v, want text redacted and session_id kept", body["payload"])
		}
	})
	t.Run("another namespace's task is not found", func(t *testing.T) {
		w, _ := f.do(t, call{method: "GET", path: "/v1/tasks/" + foreign, token: testToken})
		if w.Code != 404 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("get a blank ID", func(t *testing.T) {
		w, body := f.do(t, call{method: "GET", path: "/v1/tasks/%20", token: testToken})
		if w.Code != 400 || body["field"] != "id" {
			t.Fatalf("%d %s, want 400 naming id", w.Code, w.Body)
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		w, _ := f.do(t, call{method: "GET", path: "/v1/tasks/nope", token: testToken})
		if w.Code != 404 {
			t.Fatalf("%d", w.Code)
		}
	})
	for _, tc := range []struct{ name, id, prev string }{{"cancel pending", pending, "pending"}, {"cancel scheduled", scheduled, "scheduled"}} {
		t.Run(tc.name, func(t *testing.T) {
			w, body := f.do(t, call{method: "DELETE", path: "/v1/tasks/" + tc.id, token: testToken})
			if w.Code != 200 || body["state"] != "deleted" || body["previous_state"] != tc.prev {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if w, _ := f.do(t, call{method: "GET", path: "/v1/tasks/" + tc.id, token: testToken}); w.Code != 404 {
				t.Fatalf("cancelled task still found: %d", w.Code)
			}
		})
	}
	t.Run("cancel unknown", func(t *testing.T) {
		w, _ := f.do(t, call{method: "DELETE", path: "/v1/tasks/nope", token: testToken})
		if w.Code != 404 {
			t.Fatalf("%d", w.Code)
		}
	})
}

// TestLifecycleWithWorker runs a real asynq server: a task that completes
// with a progress result, one that fails for good, and a running one that
// is cancelled through the API.
func TestLifecycleWithWorker(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc("export:media", func(ctx context.Context, tk *asynq.Task) error {
		_, err := tk.ResultWriter().Write([]byte(`{"phase":"done","percent":100,"tracks_done":3,"download_url":"file:///x.zip"}`))
		return err
	})
	mux.HandleFunc("pds:unlike", func(ctx context.Context, tk *asynq.Task) error {
		return fmtErr("pds said no: %w", asynq.SkipRetry)
	})
	mux.HandleFunc("copyright:scan", func(ctx context.Context, tk *asynq.Task) error {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	})
	s := asynq.NewServerFromRedisClient(f.rdb, asynq.Config{
		Concurrency: 3, Queues: map[string]int{"plyr:default": 1, "plyr:bulk": 1, "plyr:critical": 1},
		LogLevel: asynq.FatalLevel,
	})
	if err := s.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)

	post := func(path, body string) string {
		w, b := f.do(t, call{method: "POST", path: path, body: body, token: testToken})
		if w.Code != 202 {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
		return b["id"].(string)
	}
	waitState := func(id, state string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			w, b := f.do(t, call{method: "GET", path: "/v1/tasks/" + id, token: testToken})
			if w.Code == 200 && b["state"] == state {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s never reached %s: %d %s", id, state, w.Code, w.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	exportID := post("/v1/tasks/export:media?retention=1h", `{"export_id":"e1","artist_did":"did:plc:artist"}`)
	unlikeID := post("/v1/tasks/pds:unlike", `{"session_id":"s","like_uri":"at://did:plc:x/fm.plyr.like/1"}`)
	scanID := post("/v1/tasks/copyright:scan", scan)

	done := waitState(exportID, "completed")
	if p, _ := done["progress"].(map[string]any); p["percent"] != 100.0 || p["phase"] != "done" {
		t.Errorf("progress = %v, want the result with percent 100", done["progress"])
	}
	if r, _ := done["result"].(map[string]any); r["download_url"] != "file:///x.zip" {
		t.Errorf("result = %v", done["result"])
	}
	if done["completed_at"] == nil {
		t.Error("no completed_at")
	}
	w, body := f.do(t, call{method: "DELETE", path: "/v1/tasks/" + exportID, token: testToken})
	if w.Code != 409 || !strings.Contains(body["error"].(string), "already completed") {
		t.Errorf("cancel completed: %d %s, want 409", w.Code, w.Body)
	}

	failed := waitState(unlikeID, "archived")
	if !strings.Contains(failed["last_error"].(string), "pds said no") {
		t.Errorf("last_error = %v", failed["last_error"])
	}

	<-started
	waitState(scanID, "active")
	w, body = f.do(t, call{method: "DELETE", path: "/v1/tasks/" + scanID, token: testToken})
	if w.Code != 200 || body["state"] != "archived" || body["previous_state"] != "active" {
		t.Fatalf("cancel active: %d %s", w.Code, w.Body)
	}
	select {
	case err := <-cancelled:
		if err != context.Canceled {
			t.Errorf("handler ctx err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("running task was not cancelled")
	}
}

// With no Redis and the inline fallback, the task runs in the API's process
// and the 202 says how it ended.
func TestEnqueueInline(t *testing.T) {
	reg := job.NewRegistry(tasks.All())
	job.Register(reg, func(ctx context.Context, j *job.Job[tasks.UnlikeArgs]) error { return nil })
	job.Register(reg, func(ctx context.Context, j *job.Job[tasks.LikeArgs]) error {
		return job.Permanent(fmtErr("like %d refused", j.Args.LikeID))
	})
	c := newClient(t, nil, client.Options{Fallback: client.FallbackInline, Inline: reg})
	f := newFixture(t, Options{Token: testToken, Enqueuer: ClientEnqueuer(c, "plyr")})
	tests := []struct {
		name, path, body, state, err string
	}{
		{"completed", "/v1/tasks/pds:unlike", `{"session_id":"s","like_uri":"at://did:plc:x/fm.plyr.like/1"}`, "completed", ""},
		{"failed", "/v1/tasks/pds:like", `{"session_id":"s","like_id":9,"subject_uri":"at://did:plc:x/fm.plyr.track/1","subject_cid":"bafyreiabcdef"}`, "failed", "like 9 refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, body := f.do(t, call{method: "POST", path: tt.path, body: tt.body, token: testToken})
			if w.Code != 202 || body["outcome"] != "inline" || body["state"] != tt.state || body["queue"] != "critical" {
				t.Fatalf("%d %s, want 202 inline %s", w.Code, w.Body, tt.state)
			}
			if got, _ := body["error"].(string); !strings.Contains(got, tt.err) || (tt.err == "") != (got == "") {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
			if w.Header().Get("Location") != "" {
				t.Errorf("Location set for a task that is not in any queue")
			}
		})
	}
	// Inline, nothing is queued: GET answers 404, not 500.
	w, _ := f.do(t, call{method: "GET", path: "/v1/tasks/whatever", token: testToken})
	if w.Code != 404 {
		t.Errorf("GET after inline: %d", w.Code)
	}
}

func TestExtraRoutes(t *testing.T) {
	retry := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"retried": r.PathValue("id")})
	})
	f := newFixture(t, Options{Token: testToken, Routes: map[string]http.Handler{"POST /v1/tasks/{id}/retry": retry, "GET /v1/queues": retry}})
	w, body := f.do(t, call{method: "POST", path: "/v1/tasks/abc/retry", token: testToken})
	if w.Code != 200 || body["retried"] != "abc" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w, _ := f.do(t, call{method: "POST", path: "/v1/tasks/abc/retry"}); w.Code != 401 {
		t.Fatalf("extra route without a token: %d", w.Code)
	}
	// The API's own routes still win.
	if w, _ := f.do(t, call{method: "GET", path: "/v1/tasks/abc", token: testToken}); w.Code != 404 {
		t.Fatalf("GET /v1/tasks/abc: %d", w.Code)
	}
	_, err := New(Options{Enqueuer: f.api.o.Enqueuer, Routes: map[string]http.Handler{"GET /v1/tasks/{id}": retry}})
	if err == nil || !strings.Contains(err.Error(), "Routes") {
		t.Fatalf("clashing route: err %v", err)
	}
}
