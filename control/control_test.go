package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

func fieldOf(err error) string {
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// pageThrough lists every page and returns the IDs in order.
func pageThrough(t *testing.T, c control.Controls, o control.ListOptions) (ids []string, pages int) {
	t.Helper()
	for o.Page = 1; ; o.Page++ {
		p, err := c.List(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Tasks) > o.PageSize {
			t.Fatalf("page %d has %d tasks, page size %d", o.Page, len(p.Tasks), o.PageSize)
		}
		for _, tk := range p.Tasks {
			ids = append(ids, tk.ID)
			if tk.State != p.State {
				t.Errorf("task %s listed as %s under state %s", tk.ID, tk.State, p.State)
			}
			if o.Type != "" && tk.Type != o.Type {
				t.Errorf("task %s of type %s listed under type %s", tk.ID, tk.Type, o.Type)
			}
		}
		pages++
		if !p.HasMore {
			return ids, pages
		}
		if pages > 50 {
			t.Fatal("HasMore never ends")
		}
	}
}

func TestList(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		// 3 critical likes, 7 default: 4 exports and 3 scans; 2 scheduled;
		// 2 archived.
		var critical, defaults, exports []string
		for i := range 3 {
			critical = append(critical, e.enqueue(t, "pds:like", fmt.Sprintf(`{"like_id":%d}`, i+1), "critical"))
		}
		for i := range 7 {
			kind := "copyright:scan"
			if i%2 == 0 {
				kind = "export:media"
			}
			id := e.enqueue(t, kind, fmt.Sprintf(`{"n":%d}`, i), "default")
			defaults = append(defaults, id)
			if kind == "export:media" {
				exports = append(exports, id)
			}
		}
		sched1 := e.enqueue(t, "pds:like", `{}`, "default", asynq.ProcessIn(time.Hour))
		sched2 := e.enqueue(t, "pds:like", `{}`, "bulk", asynq.ProcessIn(time.Hour))
		for _, id := range defaults[5:] {
			if err := e.insp.ArchiveTask(ns+":default", id); err != nil {
				t.Fatal(err)
			}
		}
		archived := defaults[5:]
		pending := append(slices.Clone(critical), defaults[:5]...)

		t.Run("pending across queues, every page", func(t *testing.T) {
			for _, size := range []int{1, 3, 4, 8, 100} {
				ids, pages := pageThrough(t, e.controls, control.ListOptions{State: "pending", PageSize: size})
				if !sameSet(ids, pending) || len(ids) != len(pending) {
					t.Errorf("page size %d: listed %v, want %v", size, ids, pending)
				}
				if want := (len(pending) + size - 1) / size; pages != want {
					t.Errorf("page size %d: %d pages, want %d", size, pages, want)
				}
			}
			p, err := e.controls.List(t.Context(), control.ListOptions{State: "pending", PageSize: 4})
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != 8 || !p.HasMore || p.Page != 1 || len(p.Tasks) != 4 {
				t.Errorf("first page: total %d has_more %v page %d tasks %d; want 8 true 1 4", p.Total, p.HasMore, p.Page, len(p.Tasks))
			}
			// Queues in name order: critical first, logical names shown.
			if p.Tasks[0].Queue != "critical" || !slices.Contains(critical, p.Tasks[0].ID) {
				t.Errorf("first task %+v, want one of critical's", p.Tasks[0])
			}
		})
		t.Run("by type", func(t *testing.T) {
			want := slices.DeleteFunc(slices.Clone(exports), func(id string) bool { return slices.Contains(archived, id) })
			ids, _ := pageThrough(t, e.controls, control.ListOptions{State: "pending", Type: "export:media", PageSize: 2})
			if !sameSet(ids, want) || len(ids) != len(want) {
				t.Errorf("exports listed %v, want %v", ids, want)
			}
			ids, _ = pageThrough(t, e.controls, control.ListOptions{State: "pending", Type: "nope:none", PageSize: 2})
			if len(ids) != 0 {
				t.Errorf("unknown type listed %v", ids)
			}
		})
		t.Run("by queue", func(t *testing.T) {
			ids, _ := pageThrough(t, e.controls, control.ListOptions{State: "pending", Queue: "critical", PageSize: 2})
			if !sameSet(ids, critical) {
				t.Errorf("critical listed %v, want %v", ids, critical)
			}
			ids, _ = pageThrough(t, e.controls, control.ListOptions{State: "scheduled", PageSize: 10})
			if !sameSet(ids, []string{sched1, sched2}) {
				t.Errorf("scheduled listed %v", ids)
			}
			ids, _ = pageThrough(t, e.controls, control.ListOptions{State: "archived", Queue: "ctl:default", PageSize: 10})
			if !sameSet(ids, archived) {
				t.Errorf("archived listed %v, want %v", ids, archived)
			}
		})
		t.Run("default state is pending", func(t *testing.T) {
			p, err := e.controls.List(t.Context(), control.ListOptions{})
			if err != nil || p.State != "pending" || p.Total != 8 || p.PageSize != control.DefaultPageSize {
				t.Errorf("List() = %+v, %v", p, err)
			}
		})
		t.Run("bad input", func(t *testing.T) {
			for _, tc := range []struct {
				o     control.ListOptions
				field string
			}{
				{control.ListOptions{State: "failed"}, "state"},
				{control.ListOptions{Page: -1}, "page"},
				{control.ListOptions{PageSize: control.MaxPageSize + 1}, "page_size"},
			} {
				if _, err := e.controls.List(t.Context(), tc.o); fieldOf(err) != tc.field {
					t.Errorf("List(%+v) = %v, want a field error on %s", tc.o, err, tc.field)
				}
			}
			if _, err := e.controls.List(t.Context(), control.ListOptions{Queue: "nosuch"}); !errors.Is(err, control.ErrNotFound) {
				t.Errorf("unknown queue: %v, want ErrNotFound", err)
			}
		})
	})
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y)) && len(a) == len(b)
}

func TestShowRedacts(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		const secret = "my private comment"
		id := e.enqueue(t, "pds:comment-create", `{"session_id":"s1","text":"`+secret+`","track_id":7}`, "critical")
		// A finished task's result, redacted the same way.
		done := make(chan struct{})
		e.worker(t, func(ctx context.Context, at *asynq.Task) error {
			if at.Type() == "export:media" {
				_, _ = at.ResultWriter().Write([]byte(`{"percent":100,"download_token":"tok-123"}`))
				close(done)
			}
			return nil
		}, "bulk")
		doneID := e.enqueue(t, "export:media", `{"export_id":"e1"}`, "bulk", asynq.Retention(time.Hour))
		<-done
		e.waitState(t, "bulk", doneID, "completed")

		tk, err := e.controls.Show(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.ID != id || tk.Type != "pds:comment-create" || tk.Queue != "critical" || tk.State != "pending" {
			t.Errorf("Show = %+v", tk)
		}
		var p map[string]any
		if err := json.Unmarshal(tk.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p["text"] != tasks.Redacted || p["track_id"] != float64(7) || strings.Contains(string(tk.Payload), secret) {
			t.Errorf("payload %s: want text redacted, track_id kept", tk.Payload)
		}

		fin, err := e.controls.Show(t.Context(), doneID)
		if err != nil {
			t.Fatal(err)
		}
		if fin.State != "completed" || fin.CompletedAt == nil || string(fin.Result) != `{"download_token":"[redacted]","percent":100}` {
			t.Errorf("completed task %+v result %s", fin, fin.Result)
		}

		if _, err := e.controls.Show(t.Context(), "no-such-id"); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("Show(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestRetry(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		var runs atomic.Int32
		e.worker(t, func(ctx context.Context, at *asynq.Task) error {
			if runs.Add(1) == 1 {
				return fmt.Errorf("first run fails: %w", asynq.SkipRetry)
			}
			return nil
		}, "default")
		id := e.enqueue(t, "copyright:scan", `{"track_id":1}`, "default", asynq.Retention(time.Hour))
		e.waitState(t, "default", id, "archived")

		tk, err := e.controls.Retry(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.ID != id || (tk.State != "pending" && tk.State != "active" && tk.State != "completed") {
			t.Errorf("Retry = %+v", tk)
		}
		e.waitState(t, "default", id, "completed")
		if runs.Load() != 2 {
			t.Errorf("%d runs, want 2", runs.Load())
		}

		// Only archived, retry and scheduled tasks can be retried.
		if _, err := e.controls.Retry(t.Context(), id); !errors.Is(err, control.ErrConflict) {
			t.Errorf("Retry(completed) = %v, want ErrConflict", err)
		}
		pend := e.enqueue(t, "copyright:scan", `{"track_id":2}`, "critical")
		if _, err := e.controls.Retry(t.Context(), pend); !errors.Is(err, control.ErrConflict) {
			t.Errorf("Retry(pending) = %v, want ErrConflict", err)
		}
		if e.state(t, "critical", pend) != "pending" {
			t.Error("a refused retry changed the task")
		}
		// A scheduled task runs now.
		sched := e.enqueue(t, "copyright:scan", `{"track_id":3}`, "default", asynq.ProcessIn(time.Hour), asynq.Retention(time.Hour))
		if _, err := e.controls.Retry(t.Context(), sched); err != nil {
			t.Fatal(err)
		}
		e.waitState(t, "default", sched, "completed")
		if _, err := e.controls.Retry(t.Context(), "no-such-id"); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("Retry(unknown) = %v", err)
		}
	})
}

func TestCancel(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		started := make(chan string, 1)
		stopped := make(chan error, 1)
		e.worker(t, func(ctx context.Context, at *asynq.Task) error {
			id, _ := asynq.GetTaskID(ctx)
			started <- id
			<-ctx.Done()
			stopped <- ctx.Err()
			return ctx.Err()
		}, "bulk")

		running := e.enqueue(t, "export:media", `{"export_id":"e1"}`, "bulk", asynq.MaxRetry(3))
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("task did not start")
		}
		r, err := e.controls.Cancel(t.Context(), running)
		if err != nil {
			t.Fatal(err)
		}
		if r.PreviousState != "active" || r.State != "archived" || r.Queue != "bulk" || r.Type != "export:media" {
			t.Errorf("Cancel(active) = %+v", r)
		}
		if err := <-stopped; !errors.Is(err, context.Canceled) {
			t.Errorf("handler's context ended with %v, want Canceled", err)
		}
		if st := e.state(t, "bulk", running); st != "archived" {
			t.Errorf("cancelled running task is %s, want archived (not back in retry)", st)
		}

		pending := e.enqueue(t, "pds:like", `{}`, "critical")
		scheduled := e.enqueue(t, "pds:like", `{}`, "critical", asynq.ProcessIn(time.Hour))
		for _, id := range []string{pending, scheduled} {
			r, err := e.controls.Cancel(t.Context(), id)
			if err != nil || r.State != "deleted" {
				t.Fatalf("Cancel(%s) = %+v, %v", id, r, err)
			}
			if st := e.state(t, "critical", id); st != "gone" {
				t.Errorf("cancelled waiting task is %s, want deleted", st)
			}
		}
		if _, err := e.controls.Cancel(t.Context(), running); !errors.Is(err, control.ErrConflict) {
			t.Errorf("Cancel(archived) = %v, want ErrConflict", err)
		}
		if _, err := e.controls.Cancel(t.Context(), pending); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("Cancel(deleted) = %v, want ErrNotFound", err)
		}
	})
}

func TestQueuesPauseResume(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.enqueue(t, "pds:like", `{}`, "critical")
		e.enqueue(t, "pds:like", `{}`, "critical", asynq.ProcessIn(time.Hour))
		e.enqueue(t, "copyright:scan", `{}`, "default")

		qs, err := e.controls.Queues(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, q := range qs {
			names = append(names, q.Name)
		}
		// bulk is declared, not yet created: listed with zeros.
		if !slices.Equal(names, []string{"bulk", "critical", "default"}) {
			t.Fatalf("queues %v", names)
		}
		if c := qs[1]; c.Queue != "ctl:critical" || c.Pending != 1 || c.Scheduled != 1 || c.Size != 2 || c.Paused {
			t.Errorf("critical = %+v", c)
		}
		if b := qs[0]; b.Size != 0 || b.Paused {
			t.Errorf("bulk = %+v", b)
		}

		for _, q := range []string{"critical", "ctl:default", "bulk"} {
			for range 2 { // pausing twice is fine
				qi, err := e.controls.Pause(t.Context(), q)
				if err != nil || !qi.Paused {
					t.Fatalf("Pause(%s) = %+v, %v", q, qi, err)
				}
			}
			full := q
			if !strings.HasPrefix(q, ns+":") {
				full = ns + ":" + q
			}
			if !e.paused(t, full) {
				t.Errorf("%s not paused in Redis", full)
			}
		}
		qi, err := e.controls.Resume(t.Context(), "critical")
		if err != nil || qi.Paused || e.paused(t, "ctl:critical") {
			t.Errorf("Resume(critical) = %+v, %v", qi, err)
		}
		if qi, err := e.controls.Resume(t.Context(), "critical"); err != nil || qi.Paused {
			t.Errorf("second Resume = %+v, %v", qi, err)
		}
		qs, _ = e.controls.Queues(t.Context())
		if !qs[0].Paused || qs[1].Paused || !qs[2].Paused {
			t.Errorf("paused flags %v %v %v, want true false true", qs[0].Paused, qs[1].Paused, qs[2].Paused)
		}
		if _, err := e.controls.Pause(t.Context(), "nosuch"); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("Pause(unknown) = %v, want ErrNotFound", err)
		}
	})
}

// paused asks asynq whether q is paused (through its key for a queue
// without tasks, which asynq's stats cannot read).
func (e *env) paused(t *testing.T, q string) bool {
	t.Helper()
	if qi, err := e.insp.GetQueueInfo(q); err == nil {
		return qi.Paused
	}
	n, err := e.rc.Exists(t.Context(), "asynq:{"+q+"}:paused").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestStrikes(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := actorCtx(t)
		r, _ := strikes.ParseRule("export:media", "artist_did=did:plc:bad")
		st, err := e.controls.Strike(ctx, r, "artist under review")
		if err != nil {
			t.Fatal(err)
		}
		wantBy := "cli:direct-tester"
		if e.remote {
			wantBy = "api:cli:tester"
		}
		if st.Key != "export:media|artist_did=did:plc:bad" || st.Reason != "artist under review" || st.By != wantBy || st.At.IsZero() {
			t.Errorf("Strike = %+v", st)
		}
		// Stored where the workers' watchers read it.
		w := strikes.NewWatcher(e.rc, strikes.Options{Namespace: ns})
		if err := w.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, ok := w.Match("export:media", []byte(`{"artist_did":"did:plc:bad"}`)); !ok {
			t.Error("the strike does not reach a watcher of the namespace")
		}

		list, err := e.controls.Strikes(t.Context())
		if err != nil || len(list) != 1 || list[0].Key != st.Key {
			t.Errorf("Strikes = %+v, %v", list, err)
		}
		for _, bad := range []struct {
			kind, arg, reason, field string
		}{
			{"export:nope", "", "r", "type"},
			{"export:media", "artist=did:plc:x", "r", "arg"},
			{"copyright:scan", "track_id=abc", "r", "arg"},
			{"export:media", "", "", "reason"},
		} {
			r, _ := strikes.ParseRule(bad.kind, bad.arg)
			if _, err := e.controls.Strike(ctx, r, bad.reason); fieldOf(err) != bad.field {
				t.Errorf("Strike(%s %s %q) = %v, want a field error on %s", bad.kind, bad.arg, bad.reason, err, bad.field)
			}
		}

		got, err := e.controls.Restore(t.Context(), r)
		if err != nil || got.Key != st.Key {
			t.Fatalf("Restore = %+v, %v", got, err)
		}
		if _, err := e.controls.Restore(t.Context(), r); !errors.Is(err, control.ErrNotFound) {
			t.Errorf("second Restore = %v, want ErrNotFound", err)
		}
		list, err = e.controls.Strikes(t.Context())
		if err != nil || len(list) != 0 {
			t.Errorf("Strikes after restore = %+v, %v", list, err)
		}
	})
}
