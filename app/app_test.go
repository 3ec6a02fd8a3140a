package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

func testConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	base := map[string]string{
		"DATA_DIR":            t.TempDir(),
		"HTTP_ADDR":           "127.0.0.1:0",
		"TASK_CHECK_INTERVAL": "100ms",
		"SHUTDOWN_TIMEOUT":    "2s",
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.LoadEnv(base)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Serve over a configured Redis: every endpoint answers, a task goes
// through the API to the worker, and cancelling ctx stops it all.
func TestServe(t *testing.T) {
	cfg := testConfig(t, map[string]string{"REDIS_URL": srv.URL(srv.DB(t))})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, err := New(ctx, cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	select {
	case <-a.Listening():
	case err := <-done:
		t.Fatalf("Serve returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10s")
	}
	base := "http://" + a.Addr().String()

	tests := []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 200, `"worker":"ok"`},
		{"/metrics", 200, `plyrtasks_queue_stats_up{queue="plyr:critical"} 1`},
		{"/metrics", 200, `plyrtasks_tasks_processed_total{kind="copyright:scan"} 0`},
		{"/monitoring/", 200, "<title>Asynq - Monitoring</title>"},
		{"/monitoring/api/queues", 200, `"queues"`},
		{"/v1/tasks/nope", 404, `"error"`},
		{"/v1/exports/nope", 404, `"error"`},
	}
	for _, tt := range tests {
		code, body := getBody(t, base+tt.path)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d %.300q, want %d containing %q", tt.path, code, body, tt.code, tt.want)
		}
	}

	resp, err := http.Post(base+"/v1/tasks/copyright:scan", "application/json", strings.NewReader(`{"track_id":7,"audio_url":"https://cdn.example/x.mp3"}`))
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ ID, State string }
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != 202 || r.State != "pending" {
		t.Fatalf("enqueue: %d %+v", resp.StatusCode, r)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := getBody(t, base+"/v1/tasks/"+r.ID)
		if strings.Contains(body, `"state":"completed"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task never completed: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still answering HTTP after shutdown")
	}
}

func TestWorkerNeedsRedisURL(t *testing.T) {
	cfg := testConfig(t, nil)
	a, err := New(t.Context(), cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	err = a.Worker(t.Context())
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("Worker on embedded Redis: %v", err)
	}
}

// The worker process serves only the operations endpoints.
func TestWorkerServesOpsOnly(t *testing.T) {
	cfg := testConfig(t, map[string]string{"REDIS_URL": srv.URL(srv.DB(t))})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, err := New(ctx, cfg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Worker(ctx) }()
	<-a.Listening()
	base := "http://" + a.Addr().String()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/tasks/x": 404, "/monitoring/": 404} {
		if code, _ := getBody(t, base+path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewFailsOnUnreachableRedis(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:" + itoa(port) + "/0?dial_timeout=200ms"})
	_, err = New(t.Context(), cfg, logging.Discard())
	if err == nil || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("New with Redis down: %v", err)
	}
}
