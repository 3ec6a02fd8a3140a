package faults

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/proctest"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// restartRedis starts a redis-server again on the port and files of one
// that was stopped: its AOF brings the data back.
func (w *world) restartRedis(t *testing.T) {
	t.Helper()
	w.redis = redistest.Start(t, redistest.Options{AOF: true, Port: w.redis.Port, Dir: w.redis.Dir})
}

// TestRedisUnreachableAtEnqueue stops the redis-server under a running
// `plyrtasks serve` and enqueues a copyright scan through its API: with
// FALLBACK=inline the scan runs in the API's process and the answer, the
// log and the metrics say so; with FALLBACK=error the API answers 503, the
// log names the cause, nothing runs, and the CLI (which never runs a task
// itself) fails naming the cause. Once Redis is back the same enqueue goes
// to the queue again and the process' worker runs it.
func TestRedisUnreachableAtEnqueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fallback string
		code     int    // the API's answer
		outcome  string // its outcome field, for a 202
		state    string // its state field, for a 202
		logMsg   string // the producer's log line
		inline   float64
		scan     store.ScanStatus // the track's scan afterwards ("" none)
	}{
		{fallback: "inline", code: http.StatusAccepted, outcome: "inline", state: "completed",
			logMsg: "task queue unavailable, running the task in-process", inline: 1, scan: store.ScanSkipped},
		{fallback: "error", code: http.StatusServiceUnavailable,
			logMsg: "task queue unavailable, task refused (fallback=error)", inline: 0},
	}
	for _, tt := range tests {
		t.Run("FALLBACK="+tt.fallback, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{})
			srv := w.start(t, "serve", "serve", "FALLBACK", tt.fallback)
			tr, u := w.scanTrack(t, "down-"+tt.fallback, "")
			payload := scanPayload(tr.ID, u)
			redisAddr := w.redis.Addr

			w.redis.Stop()
			start := time.Now()
			code, body := postTask(t, srv.URL, "copyright:scan", payload, "")
			t.Logf("FALLBACK=%s, Redis stopped: HTTP %d %v after %s", tt.fallback, code, body, time.Since(start).Round(time.Millisecond))
			if code != tt.code {
				t.Fatalf("enqueue with Redis down answered %d %v, want %d", code, body, tt.code)
			}
			if tt.code == http.StatusAccepted {
				if body["outcome"] != tt.outcome || body["state"] != tt.state || body["type"] != "copyright:scan" || body["queue"] != "default" {
					t.Errorf("answer %v, want outcome %s, state %s, queue default", body, tt.outcome, tt.state)
				}
			} else if msg, _ := body["error"].(string); !strings.Contains(msg, "unavailable") {
				t.Errorf("503 answer %v does not say the queue is unavailable", body)
			}

			// The producer's log line names the kind, the reason and the cause.
			// (It may reach the captured output just after the answer.)
			srv.WaitLog(t, tt.logMsg, 5*time.Second)
			recs := srv.FindLogs("msg", tt.logMsg, "kind", "copyright:scan", "reason", "enqueue_failed")
			if len(recs) != 1 {
				t.Fatalf("%d log lines %q for the enqueue, want 1", len(recs), tt.logMsg)
			}
			if cause, _ := recs[0]["error"].(string); !strings.Contains(cause, "connection refused") || !strings.Contains(cause, redisAddr) {
				t.Errorf("log line's error %q does not name the cause (connection refused at %s)", cause, redisAddr)
			}
			m := metrics(t, srv.URL)
			inline, _ := metricValue(m, `plyrtasks_fallback_total{kind="copyright:scan",reason="enqueue_failed"}`)
			processed, _ := metricValue(m, `plyrtasks_tasks_processed_total{kind="copyright:scan"}`)
			if inline != tt.inline || processed != tt.inline {
				t.Errorf("metrics: fallback_total %v, tasks_processed_total %v; want %v each", inline, processed, tt.inline)
			}
			sc, err := w.st.GetScan(context.Background(), tr.ID)
			switch {
			case tt.scan == "" && err == nil:
				t.Errorf("the refused task ran: scan %+v", sc)
			case tt.scan != "" && (err != nil || sc.Status != tt.scan):
				t.Errorf("scan %+v, %v; want %s from the in-process run", sc, err, tt.scan)
			}
			if tt.fallback == "error" {
				// The CLI never falls back: it fails, naming the cause.
				out, exit := bin.Run(t, w.env, 60*time.Second, "enqueue", "copyright:scan", payload, "--direct")
				if exit == 0 || !strings.Contains(out, "task queue unavailable") || !strings.Contains(out, "connection refused") {
					t.Errorf("plyrtasks enqueue --direct with Redis down: exit %d, output %q; want a failure naming the unavailable queue and the refused connection", exit, out)
				}
			}

			// Redis back (once /readyz says so: go-redis retries a failed
			// dial only every second): the same enqueue is queued again, and
			// the worker of the serve process runs it.
			w.restartRedis(t)
			proctest.WaitHTTP(t, srv.Proc, srv.URL+"/readyz", http.StatusOK, 30*time.Second)
			code, body = postTask(t, srv.URL, "copyright:scan", payload, "")
			if code != http.StatusAccepted || body["outcome"] != "enqueued" {
				t.Fatalf("enqueue after Redis came back: %d %v, want 202 enqueued", code, body)
			}
			id, _ := body["id"].(string)
			w.waitStates(t, []ref{{Kind: "copyright:scan", Queue: w.queue(tasks.QueueDefault), ID: id}}, 30*time.Second, asynq.TaskStateCompleted)
			if sc, err := w.st.GetScan(context.Background(), tr.ID); err != nil || sc.Status != store.ScanSkipped {
				t.Errorf("after the queued run: scan %+v, %v", sc, err)
			}
			if n, _ := metricValue(metrics(t, srv.URL), `plyrtasks_fallback_total{kind="copyright:scan",reason="enqueue_failed"}`); n != tt.inline {
				t.Errorf("fallback_total became %v after Redis came back, want it to stay %v", n, tt.inline)
			}
			checkJSONLogs(t, srv)
		})
	}
}

// TestReadyzFollowsRedis stops the redis-server under an idle worker:
// /readyz turns 503 and names the failing checks while the worker cannot
// take tasks (/healthz stays 200: a liveness probe must not restart a
// process for Redis' outage), and the process stays up, logging go-redis'
// complaints in its JSON log. Once a redis-server runs again on the
// same port and files, /readyz is 200 again and new tasks run.
func TestReadyzFollowsRedis(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	wk := w.start(t, "worker", "worker")
	ready := wk.URL + "/readyz"

	w.redis.Stop()
	down := time.Now()
	took := proctest.WaitHTTP(t, wk.Proc, ready, http.StatusServiceUnavailable, 15*time.Second)
	t.Logf("/readyz answered 503 %s after redis-server stopped", took.Round(time.Millisecond))
	// Every answer during the outage is 503, naming both checks.
	for range 5 {
		code, b := httpCall(t, http.MethodGet, ready, nil)
		body := jsonObject(t, b)
		checks, _ := body["checks"].(map[string]any)
		redisErr, _ := checks["redis"].(string)
		workerErr, _ := checks["worker"].(string)
		if code != http.StatusServiceUnavailable || body["status"] != "unavailable" ||
			!strings.Contains(redisErr, "connection refused") || !strings.Contains(workerErr, "connection refused") {
			t.Fatalf("/readyz during the outage: %d %s; want 503 unavailable with both checks failing", code, b)
		}
		if code, b := httpCall(t, http.MethodGet, wk.URL+"/healthz", nil); code != http.StatusOK {
			t.Fatalf("/healthz during the outage: %d %s, want 200", code, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// An outage of several HEALTH_CHECK_INTERVALs (1s) and polls: the
	// process rides it out.
	time.Sleep(time.Until(down.Add(4 * time.Second)))
	select {
	case <-wk.Exited():
		t.Fatalf("the worker exited during the outage: %v", wk.ExitErr())
	default:
	}
	t.Logf("outage lasted %s", time.Since(down).Round(time.Millisecond))

	w.restartRedis(t)
	took = proctest.WaitHTTP(t, wk.Proc, ready, http.StatusOK, 30*time.Second)
	t.Logf("/readyz answered 200 %s after redis-server was back", took.Round(time.Millisecond))

	start := time.Now()
	var refs []ref
	for i := range 5 {
		tr, u := w.scanTrack(t, fmt.Sprintf("back-%d", i), "")
		refs = append(refs, w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u}))
	}
	w.waitStates(t, refs, 30*time.Second, asynq.TaskStateCompleted)
	t.Logf("5 tasks enqueued after the outage completed in %s", time.Since(start).Round(time.Millisecond))
	if n := len(wk.FindLogs("component", "go-redis")); n == 0 {
		t.Errorf("no go-redis line in the worker's log during a Redis outage")
	}
	checkJSONLogs(t, wk)
}

// TestIdleWorkersReconnectAfterClientKill kills every Redis connection of
// an idle worker with CLIENT KILL (TYPE normal and TYPE pubsub), three
// times: every subscription (wake signals, strikes) comes back, and tasks
// that arrive after each kill run within seconds. With a task running,
// its worker's cancellation subscription is killed too: it subscribes
// again, and cancelling the task still reaches it.
func TestIdleWorkersReconnectAfterClientKill(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{Moderation: true, ScanGate: func(u string) string {
		if strings.Contains(u, "/held-") {
			return "held"
		}
		return ""
	}})
	wk := w.start(t, "worker", "worker")
	ctx := context.Background()
	// The test's own connection for CLIENT commands: one, so it is the
	// one CLIENT KILL skips (SKIPME yes).
	admin := redis.NewClient(&redis.Options{Addr: w.redis.Addr, PoolSize: 1, MaxRetries: -1})
	t.Cleanup(func() { _ = admin.Close() })
	self, err := admin.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	cancelSubs := func() int64 {
		m, err := admin.PubSubNumSub(ctx, "asynq:cancel").Result()
		if err != nil {
			t.Fatal(err)
		}
		return m["asynq:cancel"]
	}
	waitSubs := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for cancelSubs() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d subscribers of asynq:cancel, want %d", cancelSubs(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// subscriptions counts the subscribers of every channel but asynq's
	// cancellations (a woken worker subscribes to those only while awake).
	subscriptions := func() map[string]int64 {
		chans, err := admin.PubSubChannels(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, ch := range chans {
			if ch == "asynq:cancel" {
				continue
			}
			n, err := admin.PubSubNumSub(ctx, ch).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[ch] = n[ch]
		}
		return out
	}
	// killAll kills every other connection, checks none survived, and waits
	// until every subscription (wake signals, strikes) is back.
	killAll := func() {
		t.Helper()
		subs := subscriptions()
		before := clientIDs(t, admin)
		normal, err := admin.ClientKillByFilter(ctx, "TYPE", "normal").Result()
		if err != nil {
			t.Fatal(err)
		}
		pubsub, err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
		if err != nil {
			t.Fatal(err)
		}
		var left []int64
		for id := range clientIDs(t, admin) {
			if id != self && before[id] {
				left = append(left, id)
			}
		}
		if len(left) > 0 || normal < 1 || pubsub < 1 {
			t.Fatalf("CLIENT KILL: %d command and %d subscriber connections killed, %v survived", normal, pubsub, left)
		}
		start := time.Now()
		for !maps.Equal(subscriptions(), subs) {
			if time.Since(start) > 15*time.Second {
				t.Fatalf("subscriptions %v before the kill, %v 15s after", subs, subscriptions())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("CLIENT KILL: %d command and %d subscriber connections killed; subscriptions %v back after %s",
			normal, pubsub, subs, time.Since(start).Round(time.Millisecond))
	}

	time.Sleep(time.Second) // idle: polling, heartbeats
	for round := 1; round <= 3; round++ {
		killAll()
		time.Sleep(time.Second) // still idle: the next polls meet dead connections
		start := time.Now()
		var refs []ref
		for i := range 10 {
			tr, u := w.scanTrack(t, fmt.Sprintf("r%d-%d", round, i), "clean")
			refs = append(refs, w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u}))
		}
		w.waitStates(t, refs, 15*time.Second, asynq.TaskStateCompleted)
		t.Logf("round %d: 10 tasks enqueued after the kill completed in %s", round, time.Since(start).Round(time.Millisecond))
	}

	// Cancellation after the subscription was killed.
	w.modProxy.Hold("held")
	tr, u := w.scanTrack(t, "held-1", "clean")
	held := w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u})
	w.waitActive(t, []ref{held}, 15*time.Second)
	w.modProxy.WaitWaiting(t, "held", 1, 15*time.Second)
	waitSubs(1) // the worker running it listens for cancellations
	killAll()
	waitSubs(1)
	if err := w.insp.CancelProcessing(held.ID); err != nil {
		t.Fatal(err)
	}
	// An operator's cancel stops a task for good: archived.
	ti := w.waitStates(t, []ref{held}, 15*time.Second, asynq.TaskStateArchived)[held.ID]
	if !strings.Contains(ti.LastErr, "cancel") {
		t.Errorf("the cancelled task is %s with last error %q, want a cancellation", ti.State, ti.LastErr)
	}
	w.modProxy.Release("held")
	if err := w.insp.RunTask(held.Queue, held.ID); err != nil {
		t.Fatal(err)
	}
	w.waitStates(t, []ref{held}, 15*time.Second, asynq.TaskStateCompleted)
	if sc, err := w.st.GetScan(ctx, tr.ID); err != nil || sc.Status != store.ScanClean {
		t.Errorf("scan of the cancelled and rerun task: %+v, %v; want clean", sc, err)
	}
	select {
	case <-wk.Exited():
		t.Fatalf("the worker exited: %v", wk.ExitErr())
	default:
	}
}

// clientIDs lists the IDs of the connections Redis has.
func clientIDs(t *testing.T, c *redis.Client) map[int64]bool {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("CLIENT LIST line %q", line)
				}
				ids[id] = true
			}
		}
	}
	return ids
}
