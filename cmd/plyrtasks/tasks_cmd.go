package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/api"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// targetHelp explains how enqueue, status and cancel pick where to go.
const targetHelp = `
Where it goes:
  --api URL          the HTTP API of a running 'plyrtasks serve' (token: --token or API_TOKEN)
  --direct           straight to the Redis at REDIS_URL
  neither            REDIS_URL set: straight to that Redis; otherwise the HTTP API at
                     $PLYRTASKS_API_URL, or at HTTP_ADDR (default 127.0.0.1:8080) — so on
                     embedded defaults it reaches the 'plyrtasks serve' on this machine.`

func (f *targetFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.apiURL, "api", "", "HTTP API to use, e.g. http://127.0.0.1:8080 (default: see 'Where it goes')")
	cmd.Flags().BoolVar(&f.direct, "direct", false, "talk to the Redis at REDIS_URL instead of an HTTP API")
	cmd.Flags().StringVar(&f.token, "token", "", "bearer token for the HTTP API (default $API_TOKEN)")
}

// waitFlags control --wait.
type waitFlags struct {
	wait    bool
	timeout time.Duration
	every   time.Duration
}

func (w *waitFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, what)
	cmd.Flags().DurationVar(&w.timeout, "wait-timeout", 0, "give up waiting after this long (0: wait as long as it takes)")
	cmd.Flags().DurationVar(&w.every, "poll", 500*time.Millisecond, "how often --wait asks for the task's state")
}

// optionFlags maps each enqueue flag to the API query parameter it sets:
// the same parsing and messages in both directions.
var optionFlags = []struct{ flag, param, usage string }{
	{"delay", "delay", "run no sooner than this from now, e.g. 10s, 5m"},
	{"at", "process_at", "run no sooner than this time (RFC 3339, e.g. 2026-01-02T15:04:05Z)"},
	{"unique-for", "unique_for", "refuse a duplicate (same unique key) for this long, e.g. 1h"},
	{"max-retry", "max_retry", "retries before the task is archived (0: none)"},
	{"timeout", "timeout", "bound one attempt, e.g. 2m"},
	{"retention", "retention", "keep the completed task and its result this long, e.g. 24h"},
	{"queue", "queue", "queue: critical, default or bulk"},
	{"task-id", "task_id", "the task's ID (default: a random UUID)"},
}

func newEnqueueCmd() *cobra.Command {
	var tf targetFlags
	var wf waitFlags
	var asJSON bool
	vals := make([]string, len(optionFlags))
	cmd := &cobra.Command{
		Use:   "enqueue TYPE JSON",
		Short: "Enqueue a task by type name with a JSON payload",
		Long: `enqueue puts one task on its queue. TYPE is a task type (copyright:scan,
export:media, pds:like, …); JSON its payload: inline, '-' to read stdin, or
@FILE. The payload is validated first: a bad field is reported by name and
nothing is enqueued. Options override the type's defaults.

It prints the task's ID, queue and state. With --wait it then follows the
task until it ends, drawing a progress bar when the task reports a
percentage (export:media does), and exits non-zero if the task failed (or
was cancelled). A duplicate of a unique task that is still queued or
running is reported with the existing task's ID (exit 0; --wait follows
that task).
` + targetHelp + `

Example:
  plyrtasks enqueue copyright:scan '{"track_id":42,"audio_url":"https://cdn.example/a.mp3"}' --wait`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			payload, err := readPayload(args[1], cmd.InOrStdin())
			if err != nil {
				return err
			}
			q := url.Values{}
			for i, of := range optionFlags {
				if cmd.Flags().Changed(of.flag) {
					q.Set(of.param, vals[i])
				}
			}
			opts, err := api.ParseOptions(q)
			if err != nil {
				return flagError(err)
			}
			t, err := openTarget(tf)
			if err != nil {
				return err
			}
			defer t.Close()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			res, err := t.Enqueue(ctx, kind, payload, opts)
			var id string
			switch {
			case err == nil:
				id = res.ID
				if asJSON && !wf.wait {
					return printJSON(out, res)
				}
				if !asJSON {
					fmt.Fprintf(out, "%s %s %s (queue %s, %s)\n", res.Outcome, res.Type, res.ID, res.Queue, res.State)
				}
				if res.Outcome == string(api.OutcomeInline) {
					// It already ran, here or in the API's process.
					if res.State == "failed" {
						return &exitError{code: 1, msg: fmt.Sprintf("%s %s failed: %s", kind, res.ID, res.Error)}
					}
					return nil
				}
			case api.StatusCode(err) == 409 && err.(*api.Error).ID != "":
				id = err.(*api.Error).ID
				if !asJSON {
					fmt.Fprintf(out, "duplicate %s: task %s is already queued or running\n", kind, id)
				}
				if !wf.wait {
					if asJSON {
						return printJSON(out, map[string]string{"outcome": "duplicate", "id": id, "type": kind})
					}
					return nil
				}
			default:
				return fmt.Errorf("enqueue %s via %s: %w", kind, t, err)
			}
			if !wf.wait {
				return nil
			}
			return waitAndReport(cmd, t, id, wf, asJSON)
		},
	}
	for i, of := range optionFlags {
		cmd.Flags().StringVar(&vals[i], of.flag, "", of.usage)
	}
	wf.register(cmd, "follow the task until it ends; exit non-zero if it failed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the answer (or, with --wait, the final status) as JSON")
	tf.register(cmd)
	return cmd
}

func newStatusCmd() *cobra.Command {
	var tf targetFlags
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a task's state, attempts, last error, result and progress",
		Long: `status prints a task as JSON: type, queue, state (pending, scheduled,
active, retry, archived, completed), attempts, last error, the payload with
secrets redacted, and the result and progress where the task wrote them.
With --wait it follows the task until it ends and exits non-zero if it
failed.
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := openTarget(tf)
			if err != nil {
				return err
			}
			defer t.Close()
			if wf.wait {
				return waitAndReport(cmd, t, args[0], wf, true)
			}
			st, err := t.Get(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("status %s via %s: %w", args[0], t, err)
			}
			return printJSON(cmd.OutOrStdout(), st)
		},
	}
	wf.register(cmd, "follow the task until it ends; exit non-zero if it failed")
	tf.register(cmd)
	return cmd
}

func newCancelCmd() *cobra.Command {
	var tf targetFlags
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task: delete it if it has not started, stop it if it runs",
		Long: `cancel deletes a pending, scheduled or retrying task (it will never run), or
asks the worker running an active task to stop it (its context is
cancelled; an export aborts its upload). A finished task cannot be
cancelled (exit 1).
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := openTarget(tf)
			if err != nil {
				return err
			}
			defer t.Close()
			r, err := t.Cancel(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("cancel %s via %s: %w", args[0], t, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s (was %s)\n", r.State, r.Type, r.ID, r.PreviousState)
			return nil
		},
	}
	tf.register(cmd)
	return cmd
}

// readPayload reads the JSON argument: inline, "-" for stdin, "@file".
func readPayload(arg string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case arg == "-":
		b, err = io.ReadAll(io.LimitReader(stdin, tasks.MaxPayloadBytes+1))
	case strings.HasPrefix(arg, "@"):
		b, err = os.ReadFile(arg[1:])
	default:
		b = []byte(arg)
	}
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	if len(b) > tasks.MaxPayloadBytes {
		return nil, fmt.Errorf("payload too large: limit %d bytes", tasks.MaxPayloadBytes)
	}
	return b, nil
}

// flagError renames a query parameter in a FieldError to its flag.
func flagError(err error) error {
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		for _, of := range optionFlags {
			if of.param == fe.Field {
				return fmt.Errorf("--%s: %s", of.flag, fe.Reason)
			}
		}
		return fmt.Errorf("%s: %s", fe.Field, fe.Reason)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// waitAndReport follows task id to its end, showing progress on stderr, then
// prints its final status and turns a failure into a non-zero exit.
func waitAndReport(cmd *cobra.Command, t target, id string, wf waitFlags, asJSON bool) error {
	ctx := cmd.Context()
	if wf.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wf.timeout)
		defer cancel()
	}
	st, err := waitTask(ctx, t, id, wf.every, cmd.ErrOrStderr(), stderrIsTerminal(cmd))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && wf.timeout > 0 {
			return &exitError{code: 2, msg: fmt.Sprintf("task %s still not finished after %s", id, wf.timeout)}
		}
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		if err := printJSON(out, st); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "%s %s %s\n", st.State, st.Type, st.ID)
		if len(st.Result) > 0 {
			fmt.Fprintf(out, "result: %s\n", st.Result)
		}
	}
	if st.State != "completed" {
		msg := fmt.Sprintf("task %s %s", id, st.State)
		if st.LastError != "" {
			msg += ": " + st.LastError
		}
		return &exitError{code: 1, msg: msg}
	}
	return nil
}

// waitTask polls until the task is in a final state. Progress goes to w:
// one line redrawn in place on a terminal, a new line per change otherwise.
func waitTask(ctx context.Context, t target, id string, every time.Duration, w io.Writer, tty bool) (*api.TaskStatus, error) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	last := ""
	done := func() {
		if tty && last != "" {
			fmt.Fprintln(w)
		}
	}
	defer done()
	misses := 0
	for {
		st, err := t.Get(ctx, id)
		switch {
		case err == nil:
			misses = 0
			if line := progressLine(st); line != last {
				if tty {
					fmt.Fprintf(w, "\r\033[K%s", line)
				} else {
					fmt.Fprintln(w, line)
				}
				last = line
			}
			if api.Finished(st.State) {
				return st, nil
			}
		case api.StatusCode(err) == 404:
			return nil, fmt.Errorf("task %s is gone: deleted, or completed with no retention (%w)", id, err)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			// A blip (the API restarting, a Redis failover): keep trying a while.
			if misses++; misses > 10 {
				return nil, fmt.Errorf("status of %s via %s: %w", id, t, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every):
		}
	}
}
