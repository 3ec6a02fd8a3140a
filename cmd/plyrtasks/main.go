// Command plyrtasks is plyr.fm's durable background-task system in one
// binary: `serve` runs the HTTP API, a worker and the dashboard in one
// process; `worker` runs a worker alone; `enqueue` and `status` talk to a
// running system through its HTTP API or straight to Redis. Run
// `plyrtasks help` for the full list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling: a second
		// Ctrl-C kills at once instead of waiting for the drain.
		<-ctx.Done()
		stop()
	}()
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "plyrtasks:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "plyrtasks:", err)
		if hint := errorHint(err); hint != "" {
			fmt.Fprintln(os.Stderr, "plyrtasks:", hint)
		}
		os.Exit(1)
	}
}

// exitError ends the command with a given exit code (and an optional
// message) instead of cobra's usual error print.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// newRootCmd builds the command tree, writing output to stdout and
// messages to stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "plyrtasks",
		Short: "plyr.fm's durable background tasks (asynq on Redis)",
		Long: `plyrtasks runs plyr.fm's background work — copyright scans, media exports,
ATProto record syncs, scrobbles, likes and comments — durably on Redis with
asynq: workers run tasks, retry them with backoff and survive crashes, and
operators watch them in the asynqmon dashboard at /monitoring/.

Configuration comes from environment variables (see 'plyrtasks config' and
the README). With nothing configured, 'plyrtasks serve' runs everything on
embedded, in-memory defaults: try it with

  go run ./cmd/plyrtasks serve`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServeCmd(),
		newWorkerCmd(),
		newEnqueueCmd(),
		newStatusCmd(),
		newCancelCmd(),
		newMigrateCmd(),
		newConfigCmd(),
		newHealthcheckCmd(),
		newVersionCmd(),
	)
	// Commands of the task families and of operations, one line each.
	root.AddCommand(newSessionCmd())
	root.AddCommand(newDevCmd())
	root.AddCommand(newBenchExportCmd())
	root.AddCommand(newTasksCmd())
	root.AddCommand(newQueuesCmd())
	root.AddCommand(newStrikeCmd(), newRestoreCmd(), newStrikesCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return nil
		},
	}
}

// errorHint says what to do about an error whose cause a newcomer may not
// guess: nothing listening where the CLI looked for the HTTP API.
func errorHint(err error) string {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "nothing answers there: is 'plyrtasks serve' running? Point the CLI elsewhere with --api URL (or PLYRTASKS_API_URL), or at Redis with REDIS_URL"
	}
	return ""
}
