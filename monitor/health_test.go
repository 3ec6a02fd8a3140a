package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/redistest"
)

func TestHealthz(t *testing.T) {
	w := httptest.NewRecorder()
	Healthz().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != 200 || w.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Fatalf("healthz = %d %q", w.Code, w.Body.String())
	}
}

func TestReadyz(t *testing.T) {
	up := srv.Client(t, srv.DB(t))
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + itoa(port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	workerOK := Check{"worker", func(context.Context) error { return nil }}
	workerStopped := Check{"worker", func(context.Context) error { return errors.New("worker not running") }}
	slow := Check{"worker", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}

	tests := []struct {
		name   string
		checks []Check
		code   int
		want   map[string]string
	}{
		{"all ready", []Check{RedisCheck(up), workerOK}, 200, map[string]string{"redis": "ok", "worker": "ok"}},
		{"worker stopped", []Check{RedisCheck(up), workerStopped}, 503, map[string]string{"redis": "ok", "worker": "worker not running"}},
		{"check bounded by timeout", []Check{slow}, 503, map[string]string{"worker": "context deadline exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Readyz(100*time.Millisecond, tt.checks...).ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			var got struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Checks) != len(tt.want) {
				t.Fatalf("checks = %v, want %v", got.Checks, tt.want)
			}
			for k, v := range tt.want {
				if got.Checks[k] != v {
					t.Errorf("check %s = %q, want %q", k, got.Checks[k], v)
				}
			}
			if wantStatus := map[int]string{200: "ready", 503: "unavailable"}[tt.code]; got.Status != wantStatus {
				t.Errorf("status = %q, want %q", got.Status, wantStatus)
			}
		})
	}

	t.Run("redis down", func(t *testing.T) {
		w := httptest.NewRecorder()
		Readyz(time.Second, RedisCheck(down), workerOK).ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		if w.Code != 503 {
			t.Fatalf("code %d with Redis down: %s", w.Code, w.Body)
		}
		var got struct{ Checks map[string]string }
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		if got.Checks["redis"] == "ok" || got.Checks["worker"] != "ok" {
			t.Fatalf("checks = %v", got.Checks)
		}
	})
}
