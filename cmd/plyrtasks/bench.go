package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/internal/bench"
)

// addBenchCommands makes `plyrtasks bench` itself the throughput and Redis
// cost bench, and adds `bench frontier` and the hidden `bench worker` (the
// child process the two drive).
func addBenchCommands(b *cobra.Command) {
	var o bench.Options
	b.Long = `bench starts its own redis-server (redis-server must be on PATH) and measures,
side by side in one run, no-op tasks through bare asynq, through plyrtasks
(server, job registry and middleware, client) and through plyrtasks with the
woken worker (WORKER_WAKE), against the same Redis driven without a task
system. It prints one Markdown table: tasks/s, enqueue/s, pickup latency at
a steady rate and into idle queues, Redis commands per task and per idle
worker per second (top-level, and with the commands Lua scripts run), and
the worker's peak memory over a long run. Workers run as child processes of
this binary. --quick finishes within a minute; the full run takes several.

'bench frontier' measures pickup latency against idle Redis cost over a
range of check intervals and the presets; 'bench export' measures exports.`
	b.Args = cobra.NoArgs
	b.RunE = func(cmd *cobra.Command, _ []string) error {
		o.Spawn = selfSpawn
		o.Progress = cmd.ErrOrStderr()
		rep, err := bench.Run(cmd.Context(), o)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), rep.Table())
		fmt.Fprintln(cmd.OutOrStdout(), rep.Settings())
		return nil
	}
	f := b.Flags()
	f.BoolVar(&o.Quick, "quick", false, "small sizes: finishes within a minute")
	f.IntVar(&o.Concurrency, "concurrency", 0, "worker concurrency (default 100)")
	f.IntVar(&o.Tasks, "tasks", 0, "backlog drained for tasks/s (default 50000; quick 3000)")
	f.IntVar(&o.RSSTasks, "rss-tasks", 0, "tasks run while sampling the worker's memory (default 1000000; quick 10000)")
	f.IntVar(&o.Rate, "rate", 0, "steady enqueue rate of the pickup measurement (default 500/s)")
	f.DurationVar(&o.RateDuration, "rate-duration", 0, "how long the steady rate is measured (default 10s; quick 2s)")
	f.DurationVar(&o.IdleWindow, "idle-window", 0, "how long idle Redis commands are counted (default 30s; quick 2s)")
	f.IntVar(&o.IdleSamples, "idle-samples", 0, "tasks enqueued one by one into idle queues (default 20; quick 3)")

	var fo bench.FrontierOptions
	frontier := &cobra.Command{
		Use:   "frontier",
		Short: "Measure pickup latency against idle Redis cost over check intervals and the presets",
		Long: `frontier starts its own redis-server and, for plain workers over a range of
TASK_CHECK_INTERVAL values, for woken workers over a range of active check
intervals, and for each WORKER_PRESET, measures the idle worker's Redis
commands per second (top-level and with Lua internals) and the pickup
latency p50/p99 at a steady 500 tasks/s with 100-way concurrency.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fo.Spawn = selfSpawn
			fo.Progress = cmd.ErrOrStderr()
			fr, err := bench.RunFrontier(cmd.Context(), fo)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), fr.Table())
			fmt.Fprintf(cmd.OutOrStdout(), "Run took %s.\n", fr.Took.Round(time.Second))
			return nil
		},
	}
	ff := frontier.Flags()
	ff.BoolVar(&fo.Quick, "quick", false, "fewer points and shorter windows: finishes within a minute")
	ff.DurationVar(&fo.RateDuration, "rate-duration", 0, "how long each point's steady rate is measured (default 5s; quick 2s)")
	ff.DurationVar(&fo.IdleWindow, "idle-window", 0, "how long each point's idle commands are counted (default 15s; quick 3s)")

	worker := &cobra.Command{
		Use:    "worker",
		Short:  "The bench's worker child process (driven over stdin/stdout)",
		Hidden: true,
		// The flags are bench.WorkerConfig's own.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := bench.ParseWorkerArgs(args)
			if err != nil {
				return err
			}
			return bench.RunWorker(cmd.Context(), c, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	b.AddCommand(frontier, worker)
}

// selfSpawn runs `<this binary> bench worker ARGS`, killed with this
// process.
func selfSpawn(args []string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	cmd := exec.Command(self, append([]string{"bench", "worker"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
