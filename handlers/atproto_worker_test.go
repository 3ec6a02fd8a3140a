package handlers

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// These tests run the ATProto tasks through the real worker (server.New on
// a real redis-server), enqueued by the real client, so retries, archiving
// and concurrency are asynq's own.

// worker starts a worker process on e's Redis with its own PDS client and
// registry (as a separate process would have), retrying after 50ms.
func (e *atEnv) worker(t *testing.T, concurrency int) *pds.Client {
	t.Helper()
	pc, err := pds.New(pds.Options{Store: e.st, Redis: e.redis, Namespace: e.cfg.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	d := e.deps()
	d.PDS = pc
	reg := job.NewRegistry(tasks.All())
	if err := Register(reg, d); err != nil {
		t.Fatal(err)
	}
	srv := server.New(e.redis, reg, server.Options{
		Namespace:                e.cfg.Namespace,
		Concurrency:              concurrency,
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:          5 * time.Second,
		RetryDelay:               func(int, error) time.Duration { return 50 * time.Millisecond },
		DisablePeriodic:          true,
		Logger:                   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:                  e.metrics,
	})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return pc
}

func (e *atEnv) producer(t *testing.T) *client.Client {
	t.Helper()
	c := client.New(e.redis, client.Options{Namespace: e.cfg.Namespace, Fallback: client.FallbackError, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// await waits (at most 60s) until task id on queue reaches state.
func (e *atEnv) await(t *testing.T, res client.Result, state asynq.TaskState) *asynq.TaskInfo {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(e.redis)
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := insp.GetTaskInfo(res.Queue, res.ID)
		if err == nil && info.State == state {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s (%s) did not reach %s: %+v, %v", res.ID, res.Kind, state, info, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestATProtoWorkerRetriesAServerError(t *testing.T) {
	e := newATEnv(t)
	_, fan, tr := e.likeSetup(t)
	l := e.like(t, fan, tr, time.Now())
	e.worker(t, 2)
	e.proxy.Add(pdstest.FailTimes("com.atproto.repo.putRecord", 2, pdstest.ServerError()))

	res, err := e.producer(t).ScheduleLike(context.Background(), fan.SessionID, l.ID, tr.RecordURI, tr.RecordCID)
	if err != nil || res.Outcome != client.Enqueued {
		t.Fatalf("enqueue: %+v %v", res, err)
	}
	info := e.await(t, res, asynq.TaskStateCompleted)
	if info.Retried != 2 || !strings.Contains(info.LastErr, "HTTP 502") {
		t.Fatalf("retried %d times, last error %q; want 2 retries after 502s", info.Retried, info.LastErr)
	}
	if n := e.proxy.Count("com.atproto.repo.putRecord"); n != 3 {
		t.Fatalf("putRecord reached the proxy %d times, want 3", n)
	}
	if n := len(e.records(t, fan, likeCol)); n != 1 {
		t.Fatalf("%d like records, want 1", n)
	}
	if row, _ := e.st.GetLike(context.Background(), l.ID); row.RecordURI != "at://"+fan.DID+"/"+likeCol+"/"+LikeRecordKey(l) {
		t.Fatalf("like row URI = %q", row.RecordURI)
	}
}

func TestATProtoWorkerArchivesAnExpiredSession(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	ctx := context.Background()
	s, _ := e.st.GetSession(ctx, w.u.SessionID)
	pdstest.RevokeSession(t, e.pdsURL, s.Tokens.RefreshJWT)
	if _, err := e.st.UpdateSessionTokens(ctx, s.ID, s.Tokens.RefreshJWT, s.Tokens, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e.metrics = job.NewMetrics(reg)
	pc := e.worker(t, 2)

	res, err := e.producer(t).ScheduleATProtoSync(ctx, w.u.SessionID, w.u.DID)
	if err != nil {
		t.Fatal(err)
	}
	info := e.await(t, res, asynq.TaskStateArchived)
	if info.Retried != 0 || !strings.Contains(info.LastErr, "session expired") || !strings.Contains(info.LastErr, "ExpiredToken") {
		t.Fatalf("archived after %d retries with %q; want at once with the reason", info.Retried, info.LastErr)
	}
	if pc.Stats().SessionsExpired != 1 {
		t.Fatalf("SessionsExpired = %d, want 1", pc.Stats().SessionsExpired)
	}
	// Visible in metrics too, so it can alert: the worker counted one run
	// that failed on an expired session, for this kind only.
	for kind, want := range map[string]float64{"atproto:sync": 1, "pds:like": 0} {
		if got := counterValue(t, reg, "plyrtasks_sessions_expired_total", kind); got != want {
			t.Errorf("plyrtasks_sessions_expired_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}
	if n := len(e.records(t, w.u, listCol)); n != 0 {
		t.Fatalf("%d lists written", n)
	}
}

// Eight like tasks of one user, spread over two worker processes, all find
// the access token expired: one refresh reaches the PDS and all eight likes
// are written.
func TestATProtoWorkerTokenRefreshWhileSeveralTasksUseOneSession(t *testing.T) {
	e := newATEnv(t)
	artist, fan := e.newUser(t), e.newUser(t)
	e.artist(t, artist)
	ctx := context.Background()
	var likes []store.Like
	var trs []store.Track
	for i := range 8 {
		tr := e.track(t, artist, "Song")
		trs = append(trs, tr)
		likes = append(likes, e.like(t, fan, tr, time.Now().Add(time.Duration(i)*time.Second)))
	}
	s, _ := e.st.GetSession(ctx, fan.SessionID)
	if _, err := e.st.UpdateSessionTokens(ctx, s.ID, s.Tokens.RefreshJWT, s.Tokens, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	w1, w2 := e.worker(t, 4), e.worker(t, 4)

	prod := e.producer(t)
	var results []client.Result
	for i, l := range likes {
		res, err := prod.ScheduleLike(ctx, fan.SessionID, l.ID, trs[i].RecordURI, trs[i].RecordCID)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	for _, res := range results {
		e.await(t, res, asynq.TaskStateCompleted)
	}
	if n := e.proxy.Count("com.atproto.server.refreshSession"); n != 1 {
		t.Fatalf("refreshSession reached the PDS %d times, want 1", n)
	}
	if n := w1.Stats().Refreshes + w2.Stats().Refreshes; n != 1 {
		t.Fatalf("%d refreshes counted, want 1", n)
	}
	if n := len(e.records(t, fan, likeCol)); n != len(likes) {
		t.Fatalf("%d like records, want %d", n, len(likes))
	}
	after, _ := e.st.GetSession(ctx, fan.SessionID)
	if after.Tokens.RefreshJWT == s.Tokens.RefreshJWT || !after.ExpiresAt.After(time.Now()) {
		t.Fatal("the rotated tokens were not saved")
	}
}

// The worker retries a sync that failed half-way (the third write 502s);
// the retry completes it with exactly one record per list.
func TestATProtoWorkerSyncRetryAfterAFailureMidTask(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	e.worker(t, 2)
	e.proxy.Add(pdstest.FailAfter("com.atproto.repo.putRecord", 2, 1, pdstest.ServerError()))

	res, err := e.producer(t).ScheduleATProtoSync(context.Background(), w.u.SessionID, w.u.DID)
	if err != nil {
		t.Fatal(err)
	}
	info := e.await(t, res, asynq.TaskStateCompleted)
	if info.Retried != 1 {
		t.Fatalf("retried %d times, want 1", info.Retried)
	}
	if n := len(e.records(t, w.u, listCol)); n != 3 {
		t.Fatalf("%d lists, want 3", n)
	}
	if n := len(e.records(t, w.u, profileCol)); n != 1 {
		t.Fatalf("%d profiles, want 1", n)
	}
	if got := e.listItems(t, w.u, LikedListRecordKey()); got != atJSON(t, items(w.t2, w.t3, w.t1)) {
		t.Fatalf("liked list = %s", got)
	}
}

// counterValue is the value of counter name{kind} in reg (0 when absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" && lp.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
