package main

// The operator's controls: tasks list|show|retry|cancel, queues
// list|pause|resume, strike, restore, strikes. They run through package
// control, against a running plyrtasks' HTTP API or straight against
// Redis, chosen like enqueue and status (targetFlags, chooseTarget).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// controlsTarget is an open connection for the control commands.
type controlsTarget struct {
	control.Controls
	desc  string
	close func() error
}

// openControls opens the controls where targetFlags point (see
// targetHelp): a control.Remote over the HTTP API, or a control.Controller
// on REDIS_URL.
func openControls(f targetFlags) (*controlsTarget, error) {
	r, err := resolveTarget(f)
	if err != nil {
		return nil, err
	}
	cfg := r.cfg
	if !r.direct {
		return &controlsTarget{
			Controls: &control.Remote{BaseURL: r.apiURL, Token: r.token, By: controlActor(), HTTP: &http.Client{Timeout: 30 * time.Second}},
			desc:     "HTTP API at " + r.apiURL,
			close:    func() error { return nil },
		}, nil
	}
	spec, err := cfg.RedisSpec()
	if err != nil {
		return nil, err
	}
	rdb := spec.Client()
	return &controlsTarget{
		Controls: control.New(rdb, control.Options{Namespace: cfg.Namespace, Logger: logging.Discard()}),
		desc:     "Redis at " + spec.String(),
		close:    rdb.Close,
	}, nil
}

// controlActor names the operator in strikes: "cli:<user>@<host>".
func controlActor() string {
	u := os.Getenv("USER")
	if u == "" {
		u = "unknown"
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "cli:" + u
	}
	return "cli:" + u + "@" + h
}

// controlCmd runs fn on the opened controls, with the operator's name on
// the context (direct strikes record it).
func controlCmd(tf *targetFlags, fn func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := openControls(*tf)
		if err != nil {
			return err
		}
		defer c.close()
		ctx := strikes.WithActor(cmd.Context(), controlActor())
		if err := fn(ctx, c, cmd, args); err != nil {
			return fmt.Errorf("%s (via %s)", controlFlagError(err), c.desc)
		}
		return nil
	}
}

// controlFlags maps the controls' parameter names to this CLI's flags.
var controlFlags = map[string]string{
	"state": "--state", "type": "TYPE (or --type)", "queue": "--queue / QUEUE", "page": "--page",
	"page_size": "--page-size", "arg": "--arg", "reason": "--reason", "id": "ID",
}

// controlFlagError names the flag in a field error.
func controlFlagError(err error) string {
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		if f, ok := controlFlags[fe.Field]; ok {
			return f + ": " + fe.Reason
		}
		return fe.Field + ": " + fe.Reason
	}
	return err.Error()
}

// newTasksCmd is `plyrtasks tasks list|show|retry|cancel`.
func newTasksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List, show, retry and cancel tasks",
		Long: `tasks works on the tasks of this deployment's queues (TASKS_NAMESPACE):

  tasks list [--state S] [--type T] [--queue Q] [--page N]   one page of tasks
  tasks show ID       one task as JSON, payload and result with secrets redacted
  tasks retry ID      run an archived task again (or a retry/scheduled one now)
  tasks cancel ID     delete a waiting task, or stop a running one and archive it
` + targetHelp,
	}
	cmd.AddCommand(newTasksListCmd(), newTasksShowCmd(), newTasksRetryCmd(), newTasksCancelCmd())
	return cmd
}

func newTasksListCmd() *cobra.Command {
	var tf targetFlags
	var o control.ListOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List one page of tasks by state, type and queue",
		Long: `list prints one page of the tasks in a state (pending by default; also
active, scheduled, retry, archived, completed), optionally of one task type
and one queue (critical, default, bulk), oldest first within each queue.
The footer says how many tasks are in that state and how to get the next
page. A --type filter reads the state's tasks until the page is full (at
most 10000 of them; the footer says when it stopped early).
` + targetHelp,
		Args: cobra.NoArgs,
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, _ []string) error {
			p, err := c.List(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			printTaskPage(cmd.OutOrStdout(), p)
			return nil
		}),
	}
	cmd.Flags().StringVar(&o.State, "state", "pending", "pending, active, scheduled, retry, archived or completed")
	cmd.Flags().StringVar(&o.Type, "type", "", "only tasks of this type, e.g. export:media")
	cmd.Flags().StringVar(&o.Queue, "queue", "", "only this queue: critical, default or bulk (default: all)")
	cmd.Flags().IntVar(&o.Page, "page", 1, "page number, from 1")
	cmd.Flags().IntVar(&o.PageSize, "page-size", control.DefaultPageSize, fmt.Sprintf("tasks per page, 1..%d", control.MaxPageSize))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the page as JSON")
	tf.register(cmd)
	return cmd
}

func printTaskPage(w io.Writer, p *control.TaskPage) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tQUEUE\tSTATE\tATTEMPTS\tLAST ERROR")
	for _, t := range p.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\n", t.ID, t.Type, t.Queue, t.State, t.Attempts, t.MaxRetry+1, oneLine(t.LastError, 60))
	}
	_ = tw.Flush()
	what := p.State
	if p.Type != "" {
		what = p.Type + " " + what
	}
	fmt.Fprintf(w, "page %d: %d %s task(s) shown; %d %s in total", p.Page, len(p.Tasks), what, p.Total, p.State)
	if p.HasMore {
		fmt.Fprintf(w, "; next: --page %d", p.Page+1)
	}
	if p.Truncated {
		fmt.Fprint(w, "; the type filter stopped after 10000 tasks")
	}
	fmt.Fprintln(w)
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func newTasksShowCmd() *cobra.Command {
	var tf targetFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one task as JSON (payload and result redacted)",
		Long: `show prints one task as JSON: type, queue, state, attempts, last error,
timestamps, the payload with secrets and comment text redacted, and the
result the handler stored (redacted the same way).
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error {
			t, err := c.Show(ctx, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), t)
		}),
	}
	tf.register(cmd)
	return cmd
}

func newTasksRetryCmd() *cobra.Command {
	var tf targetFlags
	cmd := &cobra.Command{
		Use:   "retry ID",
		Short: "Run an archived task again",
		Long: `retry moves an archived task back to its queue so a worker runs it now
(after a strike was restored, or the cause of its failure fixed). A task
waiting in retry or scheduled runs now too. A pending, running or completed
task cannot be retried (exit 1): enqueue a completed one anew.
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error {
			t, err := c.Retry(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retried %s %s: now %s\n", t.Type, t.ID, t.State)
			return nil
		}),
	}
	tf.register(cmd)
	return cmd
}

func newTasksCancelCmd() *cobra.Command {
	var tf targetFlags
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a task: delete it if waiting, stop and archive it if running",
		Long: `cancel deletes a pending, scheduled or retry task (it never runs), or stops
a running one: its handler's context is cancelled and, once the worker lets
go of it (a few seconds at most), the task is archived so that it does not
come back as a retry; 'tasks retry ID' runs it again. It prints what became
of the task: deleted, archived, completed (it finished first) or canceling
(its worker did not answer; the task returns when its lease expires).
A completed or archived task cannot be cancelled (exit 1).
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error {
			r, err := c.Cancel(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s (was %s)\n", r.State, r.Type, r.ID, r.PreviousState)
			return nil
		}),
	}
	tf.register(cmd)
	return cmd
}

// newQueuesCmd is `plyrtasks queues [list]|pause Q|resume Q`.
func newQueuesCmd() *cobra.Command {
	var tf targetFlags
	var asJSON bool
	list := func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, _ []string) error {
		qs, err := c.Queues(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), qs)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tSTATE\tPENDING\tACTIVE\tSCHEDULED\tRETRY\tARCHIVED\tCOMPLETED\tLATENCY\tPROCESSED TODAY\tFAILED TODAY")
		for _, q := range qs {
			state := "running"
			if q.Paused {
				state = "PAUSED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\n", q.Name, state, q.Pending, q.Active, q.Scheduled,
				q.Retry, q.Archived, q.Completed, time.Duration(q.LatencySeconds*float64(time.Second)).Round(time.Millisecond), q.ProcessedToday, q.FailedToday)
		}
		return tw.Flush()
	}
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "List queues with their counts; pause and resume them",
		Long: `queues (or 'queues list') prints every queue of this deployment with its
task counts, whether it is paused, and the latency of its oldest pending
task. 'queues pause QUEUE' stops workers from taking its tasks (running ones
finish; producers keep enqueueing); 'queues resume QUEUE' lets them go on.
QUEUE is critical, default or bulk.
` + targetHelp,
		Args: cobra.NoArgs,
		RunE: controlCmd(&tf, list),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the queues as JSON")
	tf.register(cmd)

	var ltf targetFlags
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List queues with their counts (the same as 'queues')",
		Long:  "list prints every queue of this deployment with its task counts, paused state and latency.\n" + targetHelp,
		Args:  cobra.NoArgs,
		RunE:  controlCmd(&ltf, list),
	}
	listCmd.Flags().BoolVar(&asJSON, "json", false, "print the queues as JSON")
	ltf.register(listCmd)
	cmd.AddCommand(listCmd, newQueuePauseCmd(true), newQueuePauseCmd(false))
	return cmd
}

func newQueuePauseCmd(pause bool) *cobra.Command {
	var tf targetFlags
	use, short, long := "pause QUEUE", "Stop workers from taking tasks of a queue",
		"pause stops every worker from taking tasks of QUEUE (critical, default or bulk).\nRunning tasks finish; producers keep enqueueing; nothing is lost. Pausing a\npaused queue is not an error.\n"
	if !pause {
		use, short, long = "resume QUEUE", "Let workers take tasks of a paused queue again",
			"resume lets workers take tasks of QUEUE (critical, default or bulk) again\nafter 'queues pause'. Resuming a running queue is not an error.\n"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + targetHelp,
		Args:  cobra.ExactArgs(1),
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error {
			op := c.Resume
			if pause {
				op = c.Pause
			}
			q, err := op(ctx, args[0])
			if err != nil {
				return err
			}
			state := "running"
			if q.Paused {
				state = "paused"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queue %s %s (%d pending)\n", q.Name, state, q.Pending)
			return nil
		}),
	}
	tf.register(cmd)
	return cmd
}

// newStrikeCmd is `plyrtasks strike TYPE [--arg field=value] --reason …`.
func newStrikeCmd() *cobra.Command {
	var tf targetFlags
	var arg, reason string
	cmd := &cobra.Command{
		Use:   "strike TYPE [--arg field=value] --reason TEXT",
		Short: "Block a task type, or one argument value of it, at runtime",
		Long: `strike blocks every task of TYPE, or with --arg only those whose payload has
that top-level field equal to that value (for example every export:media of
one artist: --arg artist_did=did:plc:…). Within seconds, on every worker and
producer: new enqueues are refused as struck, and queued tasks are archived
with "struck: <reason>" when they come up (retry them after 'restore').
--reason is required and shown on every task the strike stops. Striking the
same rule again replaces its reason. 'strikes' lists them; 'restore' lifts one.
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error {
			rule, err := strikes.ParseRule(args[0], arg)
			if err != nil {
				return err
			}
			st, err := c.Strike(ctx, rule, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "struck %s: %s\n", st.Key, st.Reason)
			return nil
		}),
	}
	cmd.Flags().StringVar(&arg, "arg", "", "strike only tasks whose payload has field=value (a top-level JSON field)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required): shown on every task the strike stops")
	tf.register(cmd)
	return cmd
}

// newRestoreCmd is `plyrtasks restore TYPE [--arg field=value]`.
func newRestoreCmd() *cobra.Command {
	var tf targetFlags
	var arg string
	cmd := &cobra.Command{
		Use:   "restore TYPE [--arg field=value]",
		Short: "Lift a strike",
		Long: `restore lifts the strike on TYPE (with --arg, the strike on that argument
value): exactly the rule given, so restoring a type leaves its argument
strikes in force. Tasks archived while it held stay archived: 'tasks list
--state archived --type TYPE' finds them, 'tasks retry ID' runs one.
` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, args []string) error {
			rule, err := strikes.ParseRule(args[0], arg)
			if err != nil {
				return err
			}
			st, err := c.Restore(ctx, rule)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s (struck by %s at %s: %s)\n", st.Key, st.By, st.At.Format(time.RFC3339), st.Reason)
			return nil
		}),
	}
	cmd.Flags().StringVar(&arg, "arg", "", "the argument strike to lift: field=value")
	tf.register(cmd)
	return cmd
}

// newStrikesCmd is `plyrtasks strikes`: the strikes in force.
func newStrikesCmd() *cobra.Command {
	var tf targetFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "strikes",
		Short: "List the strikes in force",
		Long: `strikes lists every strike in force: the rule (TYPE or TYPE|field=value),
its reason, who struck and when. 'strike' adds one, 'restore' lifts one.
` + targetHelp,
		Args: cobra.NoArgs,
		RunE: controlCmd(&tf, func(ctx context.Context, c *controlsTarget, cmd *cobra.Command, _ []string) error {
			list, err := c.Strikes(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []strikes.Strike{}
				}
				return printJSON(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no strikes")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STRIKE\tREASON\tBY\tAT")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Key, oneLine(s.Reason, 60), s.By, s.At.Format(time.RFC3339))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the strikes as JSON")
	tf.register(cmd)
	return cmd
}
