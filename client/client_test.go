package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/rdb"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestScheduleFunctionsEnqueueTheirType(t *testing.T) {
	ctx := context.Background()
	rc, ins := redisFor(t)
	c := newClient(t, rc, client.Options{})
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	dur := 215
	tests := []struct {
		name    string
		call    func() (client.Result, error)
		kind    string
		queue   string
		payload string
	}{
		{"copyright scan", func() (client.Result, error) {
			return c.ScheduleCopyrightScan(ctx, 42, "https://cdn.plyr.fm/a.mp3")
		}, "copyright:scan", "plyr:default", `{"track_id":42,"audio_url":"https://cdn.plyr.fm/a.mp3"}`},
		{"atproto sync", func() (client.Result, error) {
			return c.ScheduleATProtoSync(ctx, "sess", "did:plc:abc")
		}, "atproto:sync", "plyr:default", `{"session_id":"sess","did":"did:plc:abc"}`},
		{"teal scrobble", func() (client.Result, error) {
			return c.ScheduleTealScrobble(ctx, tasks.TealScrobbleArgs{SessionID: "sess", TrackID: 9, TrackTitle: "t", ArtistName: "a", Duration: &dur, PlayedAt: &created})
		}, "teal:scrobble", "plyr:critical", `{"session_id":"sess","track_id":9,"track_title":"t","artist_name":"a","duration":215,"played_at":"2026-01-02T03:04:05Z"}`},
		{"album list sync", func() (client.Result, error) {
			return c.ScheduleAlbumListSync(ctx, "sess", 5)
		}, "album:list-sync", "plyr:default", `{"session_id":"sess","album_id":5}`},
		{"like", func() (client.Result, error) {
			return c.ScheduleLike(ctx, "sess", 7, "at://did:plc:abc/fm.plyr.track/3k", "bafyreiabcdefgh")
		}, "pds:like", "plyr:critical", `{"session_id":"sess","like_id":7,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k","subject_cid":"bafyreiabcdefgh"}`},
		{"unlike", func() (client.Result, error) {
			return c.ScheduleUnlike(ctx, "sess", "at://did:plc:abc/fm.plyr.like/1")
		}, "pds:unlike", "plyr:critical", `{"session_id":"sess","like_uri":"at://did:plc:abc/fm.plyr.like/1"}`},
		{"comment create", func() (client.Result, error) {
			return c.ScheduleCommentCreate(ctx, tasks.CommentCreateArgs{SessionID: "sess", CommentID: 3, SubjectURI: "at://did:plc:abc/fm.plyr.track/3k", SubjectCID: "bafyreiabcdefgh", Text: "nice", TimestampMS: 1000})
		}, "pds:comment-create", "plyr:critical", `{"session_id":"sess","comment_id":3,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k","subject_cid":"bafyreiabcdefgh","text":"nice","timestamp_ms":1000}`},
		{"comment update", func() (client.Result, error) {
			return c.ScheduleCommentUpdate(ctx, tasks.CommentUpdateArgs{SessionID: "sess", CommentID: 3, CommentURI: "at://did:plc:abc/fm.plyr.comment/1", SubjectURI: "at://did:plc:abc/fm.plyr.track/3k", SubjectCID: "bafyreiabcdefgh", Text: "edited", TimestampMS: 2000, CreatedAt: created})
		}, "pds:comment-update", "plyr:critical", `{"session_id":"sess","comment_id":3,"comment_uri":"at://did:plc:abc/fm.plyr.comment/1","subject_uri":"at://did:plc:abc/fm.plyr.track/3k","subject_cid":"bafyreiabcdefgh","text":"edited","timestamp_ms":2000,"created_at":"2026-01-02T03:04:05Z"}`},
		{"comment delete", func() (client.Result, error) {
			return c.ScheduleCommentDelete(ctx, "sess", "at://did:plc:abc/fm.plyr.comment/1")
		}, "pds:comment-delete", "plyr:critical", `{"session_id":"sess","comment_uri":"at://did:plc:abc/fm.plyr.comment/1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != client.Enqueued || res.Kind != tt.kind || res.Queue != tt.queue || res.State != "pending" || res.ID == "" {
				t.Fatalf("result = %+v", res)
			}
			info, err := ins.GetTaskInfo(tt.queue, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			def, _ := tasks.All().Lookup(tt.kind)
			if info.Type != tt.kind || info.MaxRetry != def.Opts.Retries() || info.Timeout != def.Opts.Timeout {
				t.Errorf("task = type %s, max retry %d, timeout %s; want %s, %d, %s",
					info.Type, info.MaxRetry, info.Timeout, tt.kind, def.Opts.Retries(), def.Opts.Timeout)
			}
			if got, want := payloadMap(t, info.Payload), payloadMap(t, []byte(tt.payload)); !reflect.DeepEqual(got, want) {
				t.Errorf("payload = %s, want %s", info.Payload, tt.payload)
			}
		})
	}
}

// A scrobble without played_at gets the enqueue time in its payload, so
// every attempt (and the dedupe window) uses the same play time and record
// key; a given played_at is kept as it is.
func TestScheduleTealScrobbleFixesPlayedAt(t *testing.T) {
	ctx := context.Background()
	rc, ins := redisFor(t)
	c := newClient(t, rc, client.Options{})
	given := time.Date(2025, 11, 3, 20, 15, 0, 123456000, time.FixedZone("CET", 3600))
	tests := []struct {
		name     string
		trackID  int64
		playedAt *time.Time
		want     func(before, after time.Time) (lo, hi time.Time)
	}{
		{"unset becomes the enqueue time", 1, nil, func(before, after time.Time) (time.Time, time.Time) {
			return before.Truncate(time.Microsecond), after
		}},
		{"given is kept", 2, &given, func(time.Time, time.Time) (time.Time, time.Time) { return given, given }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			res, err := c.ScheduleTealScrobble(ctx, tasks.TealScrobbleArgs{
				SessionID: "sess", TrackID: tt.trackID, TrackTitle: "t", ArtistName: "a", PlayedAt: tt.playedAt,
			})
			after := time.Now()
			if err != nil || res.Outcome != client.Enqueued {
				t.Fatalf("ScheduleTealScrobble = %+v, %v", res, err)
			}
			info, err := ins.GetTaskInfo(res.Queue, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got tasks.TealScrobbleArgs
			if err := json.Unmarshal(info.Payload, &got); err != nil || got.PlayedAt == nil {
				t.Fatalf("payload %s (%v): no played_at", info.Payload, err)
			}
			lo, hi := tt.want(before, after)
			if got.PlayedAt.Before(lo) || got.PlayedAt.After(hi) {
				t.Errorf("played_at = %s, want within %s..%s", got.PlayedAt, lo, hi)
			}
			if !got.PlayedAt.Equal(got.PlayedAt.Truncate(time.Microsecond)) {
				t.Errorf("played_at = %s has sub-microsecond digits a TID cannot hold", got.PlayedAt)
			}
		})
	}
}

func TestOptionsOverrideDefaults(t *testing.T) {
	ctx := context.Background()
	rc, ins := redisFor(t)
	c := newClient(t, rc, client.Options{Namespace: "staging"})
	at := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	tests := []struct {
		name  string
		opts  []client.Option
		check func(t *testing.T, res client.Result, info *asynq.TaskInfo)
	}{
		{"namespaced default queue", nil, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.Queue != "staging:critical" {
				t.Errorf("queue = %s", info.Queue)
			}
		}},
		{"queue", []client.Option{client.Queue(tasks.QueueBulk)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.Queue != "staging:bulk" || res.Queue != "staging:bulk" {
				t.Errorf("queue = %s / %s", info.Queue, res.Queue)
			}
		}},
		{"in", []client.Option{client.In(time.Hour)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if res.State != "scheduled" || info.State != asynq.TaskStateScheduled {
				t.Errorf("state = %s / %v", res.State, info.State)
			}
			if d := time.Until(info.NextProcessAt); d < 59*time.Minute || d > time.Hour {
				t.Errorf("next process in %s, want ~1h", d)
			}
		}},
		{"at", []client.Option{client.At(at)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if !info.NextProcessAt.Equal(at) {
				t.Errorf("next process at %s, want %s", info.NextProcessAt, at)
			}
		}},
		{"at replaces in", []client.Option{client.In(time.Hour), client.At(time.Now().Add(-time.Second))}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.State != asynq.TaskStatePending {
				t.Errorf("state = %v, want pending (a past At runs now)", info.State)
			}
		}},
		{"max retry 0", []client.Option{client.MaxRetry(0)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.MaxRetry != 0 {
				t.Errorf("max retry = %d", info.MaxRetry)
			}
		}},
		{"max retry 3", []client.Option{client.MaxRetry(3)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.MaxRetry != 3 {
				t.Errorf("max retry = %d", info.MaxRetry)
			}
		}},
		{"timeout", []client.Option{client.Timeout(90 * time.Second)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.Timeout != 90*time.Second {
				t.Errorf("timeout = %s", info.Timeout)
			}
		}},
		{"retention", []client.Option{client.Retention(2 * time.Hour)}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.Retention != 2*time.Hour {
				t.Errorf("retention = %s", info.Retention)
			}
		}},
		{"task id", []client.Option{client.TaskID("like-7")}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.ID != "like-7" || res.ID != "like-7" {
				t.Errorf("id = %s / %s", info.ID, res.ID)
			}
		}},
		{"with opts", []client.Option{client.WithOpts(tasks.Opts{Queue: tasks.QueueDefault, MaxRetry: tasks.NoRetry, Timeout: 2 * time.Second})}, func(t *testing.T, res client.Result, info *asynq.TaskInfo) {
			if info.Queue != "staging:default" || info.MaxRetry != 0 || info.Timeout != 2*time.Second {
				t.Errorf("task = %s, %d, %s", info.Queue, info.MaxRetry, info.Timeout)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Enqueue(ctx, validLike, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != client.Enqueued {
				t.Fatalf("outcome = %v", res.Outcome)
			}
			info, err := ins.GetTaskInfo(res.Queue, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, res, info)
		})
	}
}

// Regression: asynq truncates Timeout and Retention to whole seconds, so
// 500ms became 0 ("no timeout", "delete at once").
func TestSubSecondTimeoutAndRetentionRoundUp(t *testing.T) {
	ctx := context.Background()
	rc, ins := redisFor(t)
	c := newClient(t, rc, client.Options{})
	tests := []struct {
		timeout, retention         time.Duration
		wantTimeout, wantRetention time.Duration
	}{
		{500 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second},
		{time.Millisecond, time.Millisecond, time.Second, time.Second},
		{1500 * time.Millisecond, 2500 * time.Millisecond, 2 * time.Second, 3 * time.Second},
		{time.Second, 3 * time.Second, time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.timeout, tt.retention), func(t *testing.T) {
			res, err := c.Enqueue(ctx, validLike, client.Timeout(tt.timeout), client.Retention(tt.retention))
			if err != nil {
				t.Fatal(err)
			}
			info, err := ins.GetTaskInfo(res.Queue, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			if info.Timeout != tt.wantTimeout || info.Retention != tt.wantRetention {
				t.Errorf("stored timeout %s, retention %s; want %s, %s", info.Timeout, info.Retention, tt.wantTimeout, tt.wantRetention)
			}
		})
	}
}

func TestInvalidInputNeverReachesRedis(t *testing.T) {
	ctx := context.Background()
	rc, _ := redisFor(t)
	c := newClient(t, rc, client.Options{})
	big := `{"track_id":1,"audio_url":"https://x/` + strings.Repeat("a", tasks.MaxPayloadBytes) + `"}`
	tests := []struct {
		name    string
		call    func() (client.Result, error)
		field   string // the *tasks.FieldError's field, when one
		wantErr error
	}{
		{"raw: wrong type", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "copyright:scan", []byte(`{"track_id":"x","audio_url":"https://a/b"}`))
		}, "track_id", nil},
		{"raw: missing field", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "copyright:scan", []byte(`{"track_id":4}`))
		}, "audio_url", nil},
		{"raw: unknown field", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "pds:unlike", []byte(`{"session_id":"s","like_uri":"at://a/b/c","token":"secret"}`))
		}, "token", nil},
		{"raw: not JSON", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "pds:unlike", []byte(`{nope`))
		}, "(body)", nil},
		{"raw: oversized", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "copyright:scan", []byte(big))
		}, "", tasks.ErrPayloadTooLarge},
		{"raw: unknown kind", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "no:such", []byte(`{}`))
		}, "", tasks.ErrUnknownKind},
		{"raw: internal kind", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "copyright:sync-resolutions", []byte(`{}`))
		}, "", client.ErrInternalKind},
		{"typed: invalid args", func() (client.Result, error) {
			return c.ScheduleCopyrightScan(ctx, 0, "ftp://x")
		}, "track_id", nil},
		{"option: unknown queue", func() (client.Result, error) {
			return c.Enqueue(ctx, validLike, client.Queue("fast"))
		}, "queue", nil},
		{"option: zero timeout", func() (client.Result, error) {
			return c.Enqueue(ctx, validLike, client.Timeout(0))
		}, "timeout", nil},
		{"option: negative retries", func() (client.Result, error) {
			return c.Enqueue(ctx, validLike, client.MaxRetry(-1))
		}, "max_retry", nil},
		{"option: blank task id", func() (client.Result, error) {
			return c.Enqueue(ctx, validLike, client.TaskID(" "))
		}, "task_id", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			if tt.field != "" {
				var fe *tasks.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("err = %v; want a FieldError on %q", err, tt.field)
				}
				if !tasks.IsInvalid(err) {
					t.Error("tasks.IsInvalid = false")
				}
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if n := rc.DBSize(ctx).Val(); n != 0 {
		keys := rc.Keys(ctx, "*").Val()
		t.Errorf("invalid input wrote %d keys to Redis: %v", n, keys)
	}
}

func TestEnqueueRawStoresCanonicalPayload(t *testing.T) {
	ctx := context.Background()
	rc, ins := redisFor(t)
	c := newClient(t, rc, client.Options{})
	res, err := c.EnqueueRaw(ctx, "pds:unlike", []byte(" {\n \"like_uri\": \"at://did:plc:a/fm.plyr.like/1\", \"session_id\": \"s\" } "))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ins.GetTaskInfo(res.Queue, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(tasks.UnlikeArgs{SessionID: "s", LikeURI: "at://did:plc:a/fm.plyr.like/1"})
	if string(info.Payload) != string(want) {
		t.Errorf("payload = %s, want %s", info.Payload, want)
	}
}

func TestUniqueness(t *testing.T) {
	ctx := context.Background()
	scan := func(id int64) tasks.CopyrightScanArgs {
		return tasks.CopyrightScanArgs{TrackID: id, AudioURL: "https://cdn.plyr.fm/a.mp3"}
	}
	t.Run("duplicate within the window", func(t *testing.T) {
		rc, _ := redisFor(t)
		c := newClient(t, rc, client.Options{})
		first, err := c.Enqueue(ctx, scan(1))
		if err != nil || first.Outcome != client.Enqueued {
			t.Fatalf("first = %+v, %v", first, err)
		}
		// Another URL, same track: the unique key is the track.
		dup, err := c.ScheduleCopyrightScan(ctx, 1, "https://cdn.plyr.fm/other.mp3")
		if err != nil {
			t.Fatal(err)
		}
		if dup.Outcome != client.Duplicate || dup.ID != first.ID || dup.State != "pending" {
			t.Fatalf("second = %+v; want Duplicate of %s", dup, first.ID)
		}
		other, err := c.Enqueue(ctx, scan(2))
		if err != nil || other.Outcome != client.Enqueued {
			t.Fatalf("other track = %+v, %v", other, err)
		}
		// The lock holds for the type's window (2h) and names the task.
		lock := rdb.UniqueLockKey("plyr:default", "copyright:scan", "1")
		if v := rc.Get(ctx, lock).Val(); v != "c:"+first.ID {
			t.Errorf("lock = %q, want c:%s", v, first.ID)
		}
		if ttl := rc.PTTL(ctx, lock).Val(); ttl < 119*time.Minute || ttl > 2*time.Hour {
			t.Errorf("lock TTL = %s, want ~2h", ttl)
		}
	})
	t.Run("header carries the lock to the worker", func(t *testing.T) {
		rc, ins := redisFor(t)
		c := newClient(t, rc, client.Options{})
		res, _ := c.Enqueue(ctx, scan(1))
		info, err := ins.GetTaskInfo(res.Queue, res.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Headers[rdb.HeaderUniqueLock]; got != rdb.UniqueLockKey("plyr:default", "copyright:scan", "1") {
			t.Errorf("header = %q", got)
		}
	})
	for _, tc := range []struct {
		name string
		end  func(ins *asynq.Inspector, queue, id string) error
	}{
		{"archived through the inspector", func(ins *asynq.Inspector, q, id string) error { return ins.ArchiveTask(q, id) }},
		{"deleted through the inspector", func(ins *asynq.Inspector, q, id string) error { return ins.DeleteTask(q, id) }},
	} {
		t.Run("new enqueue at once after the holder was "+tc.name, func(t *testing.T) {
			rc, ins := redisFor(t)
			c := newClient(t, rc, client.Options{})
			first, _ := c.Enqueue(ctx, scan(1))
			if err := tc.end(ins, first.Queue, first.ID); err != nil {
				t.Fatal(err)
			}
			again, err := c.Enqueue(ctx, scan(1))
			if err != nil {
				t.Fatal(err)
			}
			if again.Outcome != client.Enqueued || again.ID == first.ID {
				t.Fatalf("after the holder ended: %+v; want a new task", again)
			}
			if dup, _ := c.Enqueue(ctx, scan(1)); dup.Outcome != client.Duplicate || dup.ID != again.ID {
				t.Errorf("the new task is not the new holder: %+v", dup)
			}
		})
	}
	t.Run("scheduled holder is a duplicate; the window extends past the delay", func(t *testing.T) {
		rc, _ := redisFor(t)
		c := newClient(t, rc, client.Options{})
		first, _ := c.Enqueue(ctx, scan(1), client.In(time.Hour), client.UniqueFor(time.Minute))
		dup, _ := c.Enqueue(ctx, scan(1))
		if dup.Outcome != client.Duplicate || dup.ID != first.ID || dup.State != "scheduled" {
			t.Fatalf("dup = %+v", dup)
		}
		ttl := rc.PTTL(ctx, rdb.UniqueLockKey("plyr:default", "copyright:scan", "1")).Val()
		if ttl < 60*time.Minute || ttl > 61*time.Minute {
			t.Errorf("lock TTL = %s, want delay + window = 61m", ttl)
		}
	})
	t.Run("UniqueFor(0) is not unique", func(t *testing.T) {
		rc, _ := redisFor(t)
		c := newClient(t, rc, client.Options{})
		a, _ := c.Enqueue(ctx, scan(1), client.UniqueFor(0))
		b, _ := c.Enqueue(ctx, scan(1), client.UniqueFor(0))
		if a.Outcome != client.Enqueued || b.Outcome != client.Enqueued || a.ID == b.ID {
			t.Errorf("a = %+v, b = %+v", a, b)
		}
	})
	t.Run("unique per namespace", func(t *testing.T) {
		rc, _ := redisFor(t)
		a, _ := newClient(t, rc, client.Options{Namespace: "one"}).Enqueue(ctx, scan(1))
		b, _ := newClient(t, rc, client.Options{Namespace: "two"}).Enqueue(ctx, scan(1))
		if a.Outcome != client.Enqueued || b.Outcome != client.Enqueued {
			t.Errorf("a = %+v, b = %+v", a, b)
		}
	})
	t.Run("concurrent enqueues: one task", func(t *testing.T) {
		rc, ins := redisFor(t)
		c := newClient(t, rc, client.Options{})
		const n = 20
		results := make([]client.Result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := c.Enqueue(ctx, scan(1))
				if err != nil {
					t.Error(err)
				}
				results[i] = r
			}()
		}
		wg.Wait()
		enqueued := 0
		ids := map[string]bool{}
		for _, r := range results {
			if r.Outcome == client.Enqueued {
				enqueued++
			}
			ids[r.ID] = true
		}
		if enqueued != 1 || len(ids) != 1 {
			t.Errorf("%d enqueued, %d distinct IDs; want 1 and 1", enqueued, len(ids))
		}
		if p, _ := ins.ListPendingTasks("plyr:default"); len(p) != 1 {
			t.Errorf("%d pending tasks, want 1", len(p))
		}
	})
}

func TestTaskIDConflictIsDuplicate(t *testing.T) {
	ctx := context.Background()
	rc, _ := redisFor(t)
	c := newClient(t, rc, client.Options{})
	a, err := c.Enqueue(ctx, validLike, client.TaskID("like-7"))
	if err != nil || a.Outcome != client.Enqueued {
		t.Fatalf("a = %+v, %v", a, err)
	}
	b, err := c.Enqueue(ctx, validLike, client.TaskID("like-7"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Outcome != client.Duplicate || b.ID != "like-7" || b.State != "pending" {
		t.Errorf("b = %+v", b)
	}
}

func TestEnqueueMiddlewareAddsHeaders(t *testing.T) {
	ctx := context.Background()
	rc, ins := redisFor(t)
	var seen []string
	trace := func(next client.EnqueueFunc) client.EnqueueFunc {
		return func(ctx context.Context, req *client.Request) (client.Result, error) {
			req.Headers["traceparent"] = "00-abc-def-01"
			res, err := next(ctx, req)
			seen = append(seen, req.Kind+" "+res.Outcome.String())
			return res, err
		}
	}
	c := newClient(t, rc, client.Options{EnqueueMiddleware: []client.EnqueueMiddleware{trace}})
	res, err := c.Enqueue(ctx, validLike)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := ins.GetTaskInfo(res.Queue, res.ID)
	if info.Headers["traceparent"] != "00-abc-def-01" {
		t.Errorf("headers = %v", info.Headers)
	}
	if len(seen) != 1 || seen[0] != "pds:like enqueued" {
		t.Errorf("middleware saw %v", seen)
	}
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	rc, _ := redisFor(t)
	if err := newClient(t, rc, client.Options{}).Ping(ctx); err != nil {
		t.Errorf("Ping = %v", err)
	}
	if err := newClient(t, nil, client.Options{}).Ping(ctx); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Ping without Redis = %v, want ErrUnavailable", err)
	}
}

func TestParseFallbackMode(t *testing.T) {
	for in, want := range map[string]client.FallbackMode{"": client.FallbackInline, "inline": client.FallbackInline, "error": client.FallbackError} {
		if got, err := client.ParseFallbackMode(in); err != nil || got != want {
			t.Errorf("ParseFallbackMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := client.ParseFallbackMode("queue"); err == nil {
		t.Error("ParseFallbackMode(queue) accepted")
	}
}

// Args that name their task (tasks.TaskIDer: an export's ID) get that task
// ID on every path, typed or raw, unless the caller gives one.
func TestArgsNameTheirTask(t *testing.T) {
	ctx := context.Background()
	rc, _ := redisFor(t)
	c := newClient(t, rc, client.Options{})
	tests := []struct {
		name string
		do   func() (client.Result, error)
		want string
	}{
		{"typed", func() (client.Result, error) {
			return c.Enqueue(ctx, tasks.MediaExportArgs{ExportID: "exp-typed", ArtistDID: "did:plc:a1"})
		}, "exp-typed"},
		{"raw", func() (client.Result, error) {
			return c.EnqueueRaw(ctx, "export:media", []byte(`{"export_id":"exp-raw","artist_did":"did:plc:a2"}`))
		}, "exp-raw"},
		{"an explicit task ID wins", func() (client.Result, error) {
			return c.Enqueue(ctx, tasks.MediaExportArgs{ExportID: "exp-3", ArtistDID: "did:plc:a3"}, client.TaskID("chosen"))
		}, "chosen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.do()
			if err != nil || res.ID != tt.want {
				t.Fatalf("Result = %+v, %v; want ID %s", res, err, tt.want)
			}
		})
	}
}
