package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/plyr-fm/plyrtasks/app"
	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tracing"
)

// loadConfig reads and validates the environment, and builds the logger
// it asks for (LOG_FORMAT, LOG_LEVEL) on stderr.
func loadConfig(cmd *cobra.Command) (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(cmd.ErrOrStderr(), cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	// Task log lines carry trace_id and span_id when tracing is on, and the
	// OpenTelemetry SDK's own errors (a collector out of reach) go to the
	// same log.
	log = slog.New(tracing.LogHandler(log.Handler()))
	otel.SetErrorHandler(tracing.ErrorHandler(log))
	// go-redis' own lines (dial failures while Redis is down, Sentinel
	// switches) join the same log instead of raw text on stderr.
	redis.SetLogger(logging.GoRedisLogger(log))
	return cfg, log, nil
}

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API, a worker and the dashboard in one process",
		Long: `serve runs everything in one process, listening on HTTP_ADDR
(default 127.0.0.1:8080):

  /v1/tasks/...    the HTTP API (bearer API_TOKEN), /v1/exports/... included
  /monitoring/     the asynqmon dashboard (DASHBOARD_USER/DASHBOARD_PASSWORD)
  /healthz         200 while the process is up
  /readyz          200 while Redis answers and the worker takes tasks
  /metrics         Prometheus metrics

plus a worker running every task type. With REDIS_URL unset it starts an
embedded in-memory Redis (nothing survives a restart); with DATABASE_URL
unset the store is SQLite under DATA_DIR. Migrations run at start.

SIGTERM or Ctrl-C stops it gracefully: no new HTTP requests, running tasks
get SHUTDOWN_TIMEOUT to finish (or go back to their queue without using a
retry), in-process fallback runs are drained.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			a, err := app.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return a.Serve(cmd.Context())
		},
	}
}

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run a worker alone (scale these out; needs REDIS_URL)",
		Long: `worker runs a task worker without the API and the dashboard: the process to
scale out in a container deployment. It needs REDIS_URL (an embedded Redis
could not be reached by producers) and serves only /healthz, /readyz and
/metrics on HTTP_ADDR. Migrations run at start.

Every worker also takes part in the periodic scheduler: however many run,
each periodic task is enqueued once per tick.

SIGTERM stops it gracefully: running tasks get SHUTDOWN_TIMEOUT to finish,
or go back to their queue without using up a retry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.EmbeddedRedis() {
				return fmt.Errorf("plyrtasks worker needs REDIS_URL: producers cannot reach an embedded Redis; run `plyrtasks serve` to try plyrtasks on one machine")
			}
			a, err := app.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return a.Worker(cmd.Context())
		},
	}
}

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's database migrations and exit",
		Long: `migrate applies every pending migration to the store: PostgreSQL at
DATABASE_URL, or the embedded SQLite database under DATA_DIR when
DATABASE_URL is unset. serve and worker also migrate at start; run this
first when several processes start at once against a new database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := app.Migrate(cmd.Context(), cfg, log); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return nil
		},
	}
}

func newConfigCmd() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (secrets redacted)",
		Long: `config reads the environment exactly as serve does, validates it, and prints
every variable with its effective value (defaults applied). Secrets show as
"set" or "unset", passwords inside URLs as xxxxx. A bad value is reported
with the variable's name and allowed range, and the exit status is 1.

--markdown prints the README's configuration table instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if markdown {
				fmt.Fprint(out, config.MarkdownTable())
				return nil
			}
			cfg, err := config.Load()
			if err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			vals := cfg.Redacted()
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(out, "%s=%s\n", k, vals[k])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the configuration table of the README (every variable, its default and meaning)")
	return cmd
}

// stderrIsTerminal reports whether progress may redraw one line in place.
func stderrIsTerminal(cmd *cobra.Command) bool {
	f, ok := cmd.ErrOrStderr().(*os.File)
	return ok && logging.IsTerminal(f)
}
