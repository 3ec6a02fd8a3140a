package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// TestClusterWorkerClientDashboard runs plyrtasks on a Redis Cluster (3
// primaries, 3 replicas on loopback; REDIS_URL=redis-cluster://…): a
// `serve` and a `worker` process take tasks enqueued through the HTTP API
// (queued, delayed, a unique duplicate refused), the CLI straight to
// Redis (--wait) and the Go client, on all three queues; the API and the
// CLI read their status; the CLI cancels a running task; the dashboard's
// API lists the queues with their counts and the servers; /metrics reads
// the queues.
func TestClusterWorkerClientDashboard(t *testing.T) {
	t.Parallel()
	script := redisScript(t, "cluster.sh")
	dir := t.TempDir()
	base := freeBase(t, clusterPortsLo, clusterPortsHi, 0, 1, 2, 3, 4, 5, 10000, 10001, 10002, 10003, 10004, 10005)
	started := time.Now()
	addrs := runScript(t, nil, script, "start", dir, fmt.Sprint(base))
	t.Cleanup(func() { stopScript(t, script, dir) })
	if n := len(strings.Split(addrs, ",")); n != 6 {
		t.Fatalf("cluster.sh printed %q, want 6 addresses", addrs)
	}
	t.Logf("cluster of 6 nodes up in %s", time.Since(started).Round(time.Millisecond))

	w := newWorld(t, worldOptions{RedisURL: "redis-cluster://" + addrs, Moderation: true, ScanGate: func(u string) string {
		if strings.Contains(u, "/held-") {
			return "held"
		}
		return ""
	}})
	cc, ok := w.uc.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("redis-cluster:// gave a %T", w.uc)
	}
	ctx := context.Background()
	queues := []string{tasks.QueueCritical, tasks.QueueDefault, tasks.QueueBulk}
	for _, q := range queues {
		key := "asynq:{" + w.queue(q) + "}:pending"
		slot, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("queue %s: slot %d on %s", w.queue(q), slot, node.Options().Addr)
	}

	srv := w.start(t, "serve", "serve")
	w.start(t, "worker", "worker")

	var refs []ref
	perQueue := map[string]int{}
	var trackIDs []int64
	track := func() (store.Track, string) {
		tr, u := w.scanTrack(t, fmt.Sprintf("c%d", len(trackIDs)), "clean")
		trackIDs = append(trackIDs, tr.ID)
		return tr, u
	}
	// The HTTP API: queued on each queue, and delayed.
	for _, q := range queues {
		for _, query := range []string{"queue=" + q, "queue=" + q + "&delay=1s"} {
			tr, u := track()
			code, body := postTask(t, srv.URL, "copyright:scan", scanPayload(tr.ID, u), query)
			if code != http.StatusAccepted || body["outcome"] != "enqueued" {
				t.Fatalf("POST ?%s: %d %v", query, code, body)
			}
			refs = append(refs, ref{Kind: "copyright:scan", Queue: w.queue(q), ID: body["id"].(string)})
			perQueue[q]++
		}
	}
	// A duplicate of a unique task still queued (the lock script runs in
	// the queue's slot).
	tr, u := track()
	code, first := postTask(t, srv.URL, "copyright:scan", scanPayload(tr.ID, u), "queue=bulk&delay=3s")
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, first)
	}
	refs = append(refs, ref{Kind: "copyright:scan", Queue: w.queue(tasks.QueueBulk), ID: first["id"].(string)})
	perQueue[tasks.QueueBulk]++
	code, dup := postTask(t, srv.URL, "copyright:scan", scanPayload(tr.ID, u+"?again"), "queue=bulk")
	if code != http.StatusConflict || dup["id"] != first["id"] {
		t.Errorf("duplicate: %d %v, want 409 naming %v", code, dup, first["id"])
	}
	// The Go client.
	for _, q := range queues {
		tr, u := track()
		refs = append(refs, w.enqueue(t, tasks.CopyrightScanArgs{TrackID: tr.ID, AudioURL: u}, client.Queue(q)))
		perQueue[q]++
	}
	// The CLI, straight to the cluster, following the task to its end.
	tr, u = track()
	out, exit := bin.Run(t, w.env, 60*time.Second, "enqueue", "copyright:scan", scanPayload(tr.ID, u), "--queue", "critical", "--wait", "--json")
	// (Progress lines — the states it went through — come first, then the
	// final status as JSON.)
	var st struct{ ID, State, Type string }
	jsonStart := max(strings.Index(out, "{"), 0)
	if exit != 0 || json.Unmarshal([]byte(out[jsonStart:]), &st) != nil || st.State != "completed" || st.Type != "copyright:scan" {
		t.Fatalf("plyrtasks enqueue --wait on the cluster: exit %d, %q; want the completed task as JSON", exit, out)
	}
	refs = append(refs, ref{Kind: "copyright:scan", Queue: w.queue(tasks.QueueCritical), ID: st.ID})
	perQueue[tasks.QueueCritical]++

	w.waitStates(t, refs, 30*time.Second, asynq.TaskStateCompleted)
	for _, id := range trackIDs {
		if sc, err := w.st.GetScan(ctx, id); err != nil || sc.Status != store.ScanClean {
			t.Errorf("track %d: scan %+v, %v; want clean", id, sc, err)
		}
	}

	// Status through the API and the CLI.
	code, b := httpCall(t, http.MethodGet, srv.URL+"/v1/tasks/"+refs[0].ID, nil)
	if got := jsonObject(t, b); code != http.StatusOK || got["state"] != "completed" {
		t.Errorf("GET /v1/tasks/%s: %d %s", refs[0].ID, code, b)
	}
	out, exit = bin.Run(t, w.env, 30*time.Second, "status", refs[1].ID)
	var status struct{ ID, State string }
	if exit != 0 || json.Unmarshal([]byte(out), &status) != nil || status.ID != refs[1].ID || status.State != "completed" {
		t.Errorf("plyrtasks status on the cluster: exit %d, %q; want the completed task as JSON", exit, out)
	}

	// Cancelling a running task through the CLI reaches the worker running
	// it (asynq's cancel channel, published and subscribed on the cluster).
	w.modProxy.Hold("held")
	htr, hu := w.scanTrack(t, "held-1", "clean")
	// (On the default queue, whose counts the checks below take as a
	// minimum.)
	held := w.enqueue(t, tasks.CopyrightScanArgs{TrackID: htr.ID, AudioURL: hu})
	w.waitActive(t, []ref{held}, 15*time.Second)
	w.modProxy.WaitWaiting(t, "held", 1, 15*time.Second)
	// The dashboard lists the server running it (servers write their
	// state every 5 s), and the task as active.
	running := func() (int, []byte) {
		code, b := httpCall(t, http.MethodGet, srv.URL+"/monitoring/api/servers", nil)
		var servers struct {
			Servers []struct {
				Active []struct {
					TaskID string `json:"task_id"`
				} `json:"active_workers"`
			} `json:"servers"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &servers) != nil {
			t.Fatalf("dashboard /api/servers: %d %s", code, b)
		}
		n := 0
		for _, s := range servers.Servers {
			for _, a := range s.Active {
				if a.TaskID == held.ID {
					n++
				}
			}
		}
		return n, b
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n, b := running()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard: %d servers run the held task, want 1: %s", n, b)
		}
	}
	code, b = httpCall(t, http.MethodGet, srv.URL+"/monitoring/api/queues/"+held.Queue+"/active_tasks", nil)
	if code != http.StatusOK || !strings.Contains(string(b), held.ID) {
		t.Errorf("dashboard active tasks of %s: %d %s; want the held task", held.Queue, code, b)
	}
	out, exit = bin.Run(t, w.env, 30*time.Second, "cancel", held.ID)
	if exit != 0 || !strings.Contains(out, held.ID) {
		t.Fatalf("plyrtasks cancel of a running task on the cluster: exit %d, %q", exit, out)
	}
	// An operator's cancel stops a task for good: archived.
	ti := w.waitStates(t, []ref{held}, 15*time.Second, asynq.TaskStateArchived)[held.ID]
	if !strings.Contains(ti.LastErr, "cancel") {
		t.Errorf("the cancelled task is %s with last error %q, want a cancellation", ti.State, ti.LastErr)
	}
	w.modProxy.Release("held")

	// The dashboard's API.
	code, b = httpCall(t, http.MethodGet, srv.URL+"/monitoring/api/queues", nil)
	if code != http.StatusOK {
		t.Fatalf("dashboard /api/queues: %d %s", code, b)
	}
	var list struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Completed int    `json:"completed"`
			Processed int    `json:"processed"`
		} `json:"queues"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("dashboard /api/queues: %v: %s", err, b)
	}
	seen := map[string]bool{}
	for _, q := range list.Queues {
		for _, lq := range queues {
			if q.Queue != w.queue(lq) {
				continue
			}
			seen[lq] = true
			// The default queue also holds the workers' periodic ticks.
			if q.Completed < perQueue[lq] || lq != tasks.QueueDefault && q.Completed != perQueue[lq] {
				t.Errorf("dashboard: %s has %d completed, want %d", q.Queue, q.Completed, perQueue[lq])
			}
		}
	}
	if len(seen) != len(queues) {
		t.Errorf("dashboard lists %s, want all of %v", b, queues)
	}
	for _, path := range []string{"/monitoring/api/redis_info", "/monitoring/api/queues/" + w.queue(tasks.QueueBulk),
		"/monitoring/api/queues/" + w.queue(tasks.QueueBulk) + "/completed_tasks"} {
		if code, b := httpCall(t, http.MethodGet, srv.URL+path, nil); code != http.StatusOK {
			t.Errorf("dashboard %s: %d %s", path, code, b)
		}
	}

	// /metrics reads the queues (at most every 5 s: wait for a fresh read).
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := metrics(t, srv.URL)
		bulk := w.queue(tasks.QueueBulk)
		up, _ := metricValue(m, fmt.Sprintf(`plyrtasks_queue_stats_up{queue=%q}`, bulk))
		done, _ := metricValue(m, fmt.Sprintf(`plyrtasks_queue_tasks{queue=%q,state="completed"}`, bulk))
		if up == 1 && int(done) == perQueue[tasks.QueueBulk] {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics: queue_stats_up %v, bulk completed %v; want 1 and %d", up, done, perQueue[tasks.QueueBulk])
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
}
