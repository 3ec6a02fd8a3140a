package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
)

// controlsRoot is a root with only the control commands (the real root
// gets them from the lead's AddCommand lines).
func controlsRoot(out *bytes.Buffer) *cobra.Command {
	root := &cobra.Command{Use: "plyrtasks", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(out)
	root.SetErr(out)
	root.AddCommand(newTasksCmd(), newQueuesCmd(), newStrikeCmd(), newRestoreCmd(), newStrikesCmd())
	return root
}

// TestControlCommands runs every control command straight against Redis
// and through the HTTP API, and checks the result in Redis with asynq's
// Inspector.
func TestControlCommands(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	for _, mode := range []string{"direct", "api"} {
		t.Run(mode, func(t *testing.T) {
			db := redis.DB(t)
			rc := redis.Client(t, db)
			t.Setenv("REDIS_URL", redis.URL(db))
			t.Setenv("TASKS_NAMESPACE", "cli")
			t.Setenv("API_TOKEN", "")
			t.Setenv(envAPIURL, "")
			var extra []string
			if mode == "api" {
				ts := httptest.NewServer(control.New(rc, control.Options{Namespace: "cli", Logger: logging.Discard()}).HTTPHandler())
				defer ts.Close()
				extra = []string{"--api", ts.URL}
			}
			run := func(args ...string) (string, error) {
				var out bytes.Buffer
				root := controlsRoot(&out)
				root.SetArgs(append(args, extra...))
				err := root.ExecuteContext(t.Context())
				return out.String(), err
			}
			mustRun := func(args ...string) string {
				t.Helper()
				out, err := run(args...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
				return out
			}
			insp := asynq.NewInspectorFromRedisClient(rc)
			state := func(id string) string {
				info, err := insp.GetTaskInfo("cli:default", id)
				if err != nil {
					return "gone"
				}
				return info.State.String()
			}
			info, err := asynq.NewClientFromRedisClient(rc).Enqueue(asynq.NewTask("copyright:scan", []byte(`{"track_id":9}`)), asynq.Queue("cli:default"))
			if err != nil {
				t.Fatal(err)
			}
			id := info.ID
			if err := insp.ArchiveTask("cli:default", id); err != nil {
				t.Fatal(err)
			}

			out := mustRun("tasks", "list", "--state", "archived")
			if !strings.Contains(out, id) || !strings.Contains(out, "copyright:scan") || !strings.Contains(out, "1 archived in total") {
				t.Errorf("tasks list:\n%s", out)
			}
			out = mustRun("tasks", "list", "--state", "archived", "--type", "export:media", "--json")
			var page control.TaskPage
			if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Tasks) != 0 || page.Total != 1 {
				t.Errorf("tasks list --type export:media --json: %v\n%s", err, out)
			}
			var shown control.Task
			if err := json.Unmarshal([]byte(mustRun("tasks", "show", id)), &shown); err != nil || shown.ID != id || shown.State != "archived" {
				t.Errorf("tasks show: %+v %v", shown, err)
			}
			if out := mustRun("tasks", "retry", id); out != "retried copyright:scan "+id+": now pending\n" {
				t.Errorf("tasks retry: %q", out)
			}
			if state(id) != "pending" {
				t.Errorf("after retry the task is %s", state(id))
			}
			if out := mustRun("tasks", "cancel", id); out != "deleted copyright:scan "+id+" (was pending)\n" {
				t.Errorf("tasks cancel: %q", out)
			}
			if state(id) != "gone" {
				t.Errorf("after cancel the task is %s", state(id))
			}

			if out := mustRun("queues", "pause", "default"); out != "queue default paused (0 pending)\n" {
				t.Errorf("queues pause: %q", out)
			}
			if qi, err := insp.GetQueueInfo("cli:default"); err != nil || !qi.Paused {
				t.Errorf("not paused in Redis: %+v %v", qi, err)
			}
			out = mustRun("queues")
			if !strings.Contains(out, "default") || !strings.Contains(out, "PAUSED") || !strings.Contains(out, "bulk") {
				t.Errorf("queues:\n%s", out)
			}
			mustRun("queues", "resume", "default")
			if qi, _ := insp.GetQueueInfo("cli:default"); qi.Paused {
				t.Error("still paused after resume")
			}

			out = mustRun("strike", "export:media", "--arg", "artist_did=did:plc:bad", "--reason", "artist under review")
			if out != "struck export:media|artist_did=did:plc:bad: artist under review\n" {
				t.Errorf("strike: %q", out)
			}
			raw, err := rc.HGet(t.Context(), "cli:strikes", "export:media|artist_did=did:plc:bad").Result()
			wantBy := `"by":"cli:`
			if mode == "api" {
				wantBy = `"by":"api:cli:`
			}
			if err != nil || !strings.Contains(raw, wantBy) {
				t.Errorf("stored strike %q (%v), want by %s…", raw, err, wantBy)
			}
			out = mustRun("strikes")
			if !strings.Contains(out, "export:media|artist_did=did:plc:bad") || !strings.Contains(out, "artist under review") {
				t.Errorf("strikes:\n%s", out)
			}
			if out := mustRun("restore", "export:media", "--arg", "artist_did=did:plc:bad"); !strings.HasPrefix(out, "restored export:media|artist_did=did:plc:bad (struck by ") {
				t.Errorf("restore: %q", out)
			}
			if out := mustRun("strikes"); out != "no strikes\n" {
				t.Errorf("strikes after restore: %q", out)
			}

			// Errors name the flag to fix.
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"tasks", "list", "--state", "failed"}, "--state: must be one of"},
				{[]string{"strike", "export:media", "--arg", "artist=did:plc:x", "--reason", "r"}, `--arg: export:media has no field "artist"`},
				{[]string{"strike", "export:media"}, "--reason: is required"},
				{[]string{"restore", "export:media"}, "no such strike"},
				{[]string{"tasks", "retry", "no-such-task"}, "not found"},
				{[]string{"queues", "pause", "nosuch"}, `queue "nosuch"`},
			} {
				_, err := run(tc.args...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%v: err = %v, want one containing %q", tc.args, err, tc.want)
				}
			}
		})
	}
}

// TestControlCommandsCancelRunning stops a running task through the CLI
// and finds it archived.
func TestControlCommandsCancelRunning(t *testing.T) {
	redis := redistest.Start(t, redistest.Options{})
	db := redis.DB(t)
	rc := redis.Client(t, db)
	t.Setenv("REDIS_URL", redis.URL(db))
	t.Setenv("TASKS_NAMESPACE", "cli")
	started := make(chan struct{})
	w := asynq.NewServerFromRedisClient(rc, asynq.Config{
		Queues: map[string]int{"cli:bulk": 1}, TaskCheckInterval: 20 * time.Millisecond, ShutdownTimeout: time.Second,
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         logging.AsynqLogger(logging.Discard()),
	})
	if err := w.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	info, err := asynq.NewClientFromRedisClient(rc).Enqueue(asynq.NewTask("export:media", []byte(`{}`)), asynq.Queue("cli:bulk"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	var out bytes.Buffer
	root := controlsRoot(&out)
	root.SetArgs([]string{"tasks", "cancel", info.ID})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "archived export:media "+info.ID+" (was active)\n" {
		t.Errorf("tasks cancel: %q", out.String())
	}
	got, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo("cli:bulk", info.ID)
	if err != nil || got.State != asynq.TaskStateArchived {
		t.Errorf("task after cancel: %+v %v", got, err)
	}
}

// Every control command explains itself in --help.
func TestControlCommandsHaveHelp(t *testing.T) {
	root := controlsRoot(&bytes.Buffer{})
	for _, path := range [][]string{
		{"tasks"}, {"tasks", "list"}, {"tasks", "show"}, {"tasks", "retry"}, {"tasks", "cancel"},
		{"queues"}, {"queues", "list"}, {"queues", "pause"}, {"queues", "resume"},
		{"strike"}, {"restore"}, {"strikes"},
	} {
		cmd, _, err := root.Find(path)
		if err != nil || cmd.Name() != path[len(path)-1] {
			t.Errorf("no %v command: %v", path, err)
			continue
		}
		if cmd.Short == "" || len(cmd.Long) < 80 {
			t.Errorf("%v: help too thin", path)
		}
	}
}
