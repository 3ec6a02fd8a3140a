package monitor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// newTestDashboard builds a dashboard over a fresh database with one pending
// comment task (whose text must never be shown) in queue "plyr:critical".
func newTestDashboard(t *testing.T, o DashboardOptions) (*Dashboard, *redis.Client, *asynq.Inspector) {
	t.Helper()
	rdb := srv.Client(t, srv.DB(t))
	c := asynq.NewClientFromRedisClient(rdb)
	payload := `{"session_id":"s1","comment_id":7,"subject_uri":"at://did:plc:a/fm.plyr.track/1","subject_cid":"bafyreiabc","text":"my secret comment","timestamp_ms":1}`
	if _, err := c.Enqueue(asynq.NewTask("pds:comment-create", []byte(payload)), asynq.Queue("plyr:critical"), asynq.TaskID("t1")); err != nil {
		t.Fatal(err)
	}
	o.Redis = rdb
	d, err := NewDashboard(o)
	if err != nil {
		t.Fatal(err)
	}
	return d, rdb, asynq.NewInspectorFromRedisClient(rdb)
}

func do(t *testing.T, h http.Handler, method, path, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func basic(user, pass string) map[string]string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return map[string]string{"Authorization": r.Header.Get("Authorization")}
}

func TestDashboardAuth(t *testing.T) {
	creds := DashboardOptions{
		Admin:  Credentials{User: "admin", Password: "adminpw"},
		Viewer: Credentials{User: "viewer", Password: "viewerpw"},
	}
	const outside = "203.0.113.7:40000"
	tests := []struct {
		name       string
		opts       DashboardOptions
		method     string
		path       string
		remote     string
		hdr        map[string]string
		wantCode   int
		wantPaused bool
	}{
		{"no auth header", creds, "GET", "/monitoring/api/queues", outside, nil, 401, false},
		{"wrong password", creds, "GET", "/monitoring/api/queues", outside, basic("admin", "nope"), 401, false},
		{"viewer password for admin user", creds, "GET", "/monitoring/api/queues", outside, basic("admin", "viewerpw"), 401, false},
		{"admin reads", creds, "GET", "/monitoring/api/queues", outside, basic("admin", "adminpw"), 200, false},
		{"viewer reads", creds, "GET", "/monitoring/api/queues", outside, basic("viewer", "viewerpw"), 200, false},
		{"admin pauses", creds, "POST", "/monitoring/api/queues/plyr:critical:pause", outside, basic("admin", "adminpw"), 204, true},
		{"viewer cannot pause", creds, "POST", "/monitoring/api/queues/plyr:critical:pause", outside, basic("viewer", "viewerpw"), 405, false},
		{"viewer cannot delete a task", creds, "DELETE", "/monitoring/api/queues/plyr:critical/pending_tasks/t1", outside, basic("viewer", "viewerpw"), 405, false},
		{"credentials required even from loopback", creds, "GET", "/monitoring/api/queues", "127.0.0.1:5000", nil, 401, false},
		{"no creds: loopback v4 allowed", DashboardOptions{}, "GET", "/monitoring/api/queues", "127.0.0.1:5000", nil, 200, false},
		{"no creds: loopback v6 allowed", DashboardOptions{}, "GET", "/monitoring/api/queues", "[::1]:5000", nil, 200, false},
		{"no creds: outside refused", DashboardOptions{}, "GET", "/monitoring/api/queues", outside, nil, 403, false},
		{"no creds: proxied loopback refused", DashboardOptions{}, "GET", "/monitoring/api/queues", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.1"}, 403, false},
		{"no creds: Forwarded header refused", DashboardOptions{}, "GET", "/monitoring/", "127.0.0.1:5000", map[string]string{"Forwarded": "for=198.51.100.1"}, 403, false},
		{"read-only for everyone: admin cannot pause", DashboardOptions{Admin: creds.Admin, ReadOnly: true}, "POST", "/monitoring/api/queues/plyr:critical:pause", outside, basic("admin", "adminpw"), 405, false},
		{"read-only for everyone: admin reads", DashboardOptions{Admin: creds.Admin, ReadOnly: true}, "GET", "/monitoring/api/queues", outside, basic("admin", "adminpw"), 200, false},
		{"admin only: viewer user unknown", DashboardOptions{Admin: creds.Admin}, "GET", "/monitoring/api/queues", outside, basic("viewer", "viewerpw"), 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, insp := newTestDashboard(t, tt.opts)
			w := do(t, d, tt.method, tt.path, tt.remote, tt.hdr)
			if w.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %q", w.Code, tt.wantCode, w.Body.String())
			}
			if tt.wantCode == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
			info, err := insp.GetQueueInfo("plyr:critical")
			if err != nil {
				t.Fatal(err)
			}
			if info.Paused != tt.wantPaused {
				t.Errorf("queue paused = %v, want %v", info.Paused, tt.wantPaused)
			}
			if tt.method == "DELETE" {
				if _, err := insp.GetTaskInfo("plyr:critical", "t1"); err != nil {
					t.Errorf("task deleted through a read-only dashboard: %v", err)
				}
			}
		})
	}
}

func TestDashboardQueueListShowsCounts(t *testing.T) {
	d, _, _ := newTestDashboard(t, DashboardOptions{})
	w := do(t, d, "GET", "/monitoring/api/queues", "127.0.0.1:1", nil)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Pending int    `json:"pending"`
			Size    int    `json:"size"`
		} `json:"queues"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Queues) != 1 || got.Queues[0].Queue != "plyr:critical" || got.Queues[0].Pending != 1 {
		t.Fatalf("queues = %+v, want plyr:critical with 1 pending", got.Queues)
	}
}

func TestDashboardRedactsPayload(t *testing.T) {
	d, _, _ := newTestDashboard(t, DashboardOptions{})
	for _, path := range []string{
		"/monitoring/api/queues/plyr:critical/pending_tasks",
		"/monitoring/api/queues/plyr:critical/tasks/t1",
	} {
		w := do(t, d, "GET", path, "127.0.0.1:1", nil)
		body := w.Body.String()
		if w.Code != 200 {
			t.Fatalf("%s: status %d: %s", path, w.Code, body)
		}
		if strings.Contains(body, "my secret comment") {
			t.Errorf("%s shows the comment text: %s", path, body)
		}
		if !strings.Contains(body, `[redacted]`) || !strings.Contains(body, `did:plc:a`) {
			t.Errorf("%s: want redacted text and the visible subject URI, got %s", path, body)
		}
	}
}

func TestDashboardServesUIAndRedisInfo(t *testing.T) {
	d, rdb, _ := newTestDashboard(t, DashboardOptions{})
	w := do(t, d, "GET", "/monitoring/", "127.0.0.1:1", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "<title>Asynq - Monitoring</title>") {
		t.Fatalf("index: status %d body %.200q", w.Code, w.Body.String())
	}
	// redis_info is only routed when asynqmon gets a *redis.Client (or a
	// ClusterClient) back from the conn opt: our shared client must be
	// handed over unwrapped.
	w = do(t, d, "GET", "/monitoring/api/redis_info", "127.0.0.1:1", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"address":"`+rdb.Options().Addr) {
		t.Fatalf("redis_info: status %d body %.300q", w.Code, w.Body.String())
	}
	// The dashboard shares the process's client and must leave it usable.
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("shared client unusable after dashboard use: %v", err)
	}
}

func TestNewDashboardRejectsHalfCredentials(t *testing.T) {
	rdb := srv.Client(t, srv.DB(t))
	tests := []struct {
		name string
		o    DashboardOptions
		want string
	}{
		{"admin user only", DashboardOptions{Admin: Credentials{User: "a"}}, "DASHBOARD_PASSWORD"},
		{"admin password only", DashboardOptions{Admin: Credentials{Password: "p"}}, "DASHBOARD_USER"},
		{"viewer user only", DashboardOptions{Viewer: Credentials{User: "v"}}, "DASHBOARD_VIEWER_PASSWORD"},
		{"same user for both", DashboardOptions{Admin: Credentials{"a", "p"}, Viewer: Credentials{"a", "q"}}, "DASHBOARD_VIEWER_USER"},
		{"relative root path", DashboardOptions{RootPath: "monitoring"}, "root path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Redis = rdb
			_, err := NewDashboard(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestNewDashboardWarnsWithoutCredentials(t *testing.T) {
	var buf strings.Builder
	rdb := srv.Client(t, srv.DB(t))
	d, err := NewDashboard(DashboardOptions{Redis: rdb, Logger: slogTo(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	if !d.LoopbackOnly() || !strings.Contains(buf.String(), "DASHBOARD WITHOUT CREDENTIALS") {
		t.Fatalf("loopbackOnly=%v log=%q", d.LoopbackOnly(), buf.String())
	}
	buf.Reset()
	d, err = NewDashboard(DashboardOptions{Redis: rdb, Logger: slogTo(&buf), Admin: Credentials{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.LoopbackOnly() || buf.Len() != 0 {
		t.Fatalf("with credentials: loopbackOnly=%v log=%q", d.LoopbackOnly(), buf.String())
	}
}

func TestFormatPayload(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"indents and redacts", `{"session_id":"s","text":"hi","password":"pw"}`, "{\n  \"password\": \"[redacted]\",\n  \"session_id\": \"s\",\n  \"text\": \"[redacted]\"\n}"},
		{"nested token", `{"a":{"access_token":"x"}}`, "{\n  \"a\": {\n    \"access_token\": \"[redacted]\"\n  }\n}"},
		{"not JSON is hidden", `password=hunter2`, `"[redacted] (not JSON)"`},
		{"empty", ``, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatPayload("k", []byte(tt.in)); got != tt.want {
				t.Errorf("FormatPayload(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := FormatResult("k", []byte(tt.in)); got != tt.want {
				t.Errorf("FormatResult(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
