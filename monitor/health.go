package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Check is one readiness condition. Func returns nil when the condition
// holds; its error text is shown on /readyz, so it must not carry secrets.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// RedisCheck is ready when Redis answers PING.
func RedisCheck(rdb redis.UniversalClient) Check {
	return Check{Name: "redis", Func: func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}}
}

// Healthz answers 200 while the process is up and serving HTTP. It checks
// nothing else on purpose: a liveness probe that fails when Redis is down
// would restart healthy processes in a loop.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// DefaultCheckTimeout bounds each readiness check when Readyz is given 0.
const DefaultCheckTimeout = 2 * time.Second

// Readyz answers 200 when every check passes and 503 otherwise, with the
// result of each check:
//
//	{"status":"ready","checks":{"redis":"ok","worker":"ok"}}
//	{"status":"unavailable","checks":{"redis":"redis ping: dial tcp …: connection refused"}}
//
// Checks run concurrently, each bounded by timeout (DefaultCheckTimeout when 0).
func Readyz(timeout time.Duration, checks ...Check) http.Handler {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		results := make(map[string]string, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		ready := true
		for _, c := range checks {
			wg.Go(func() {
				err := c.Func(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					ready = false
					results[c.Name] = err.Error()
					return
				}
				results[c.Name] = "ok"
			})
		}
		wg.Wait()
		if !ready {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": results})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
