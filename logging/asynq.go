package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hibiken/asynq"
)

// AsynqLogger adapts l to asynq's Logger (asynq.Config.Logger,
// asynq.SchedulerOpts.Logger). Every record carries component=asynq.
//
// Fatal logs at error level with fatal=true and returns: asynq's default
// logger calls os.Exit(1) there, which a library must not do to the process
// that embeds it (in-flight tasks would be lost without the graceful
// drain). asynq v0.26.0 has no call site of Fatal at all; the method exists
// only to satisfy the interface, and the process owner decides what a fatal
// condition means.
func AsynqLogger(l *slog.Logger) asynq.Logger {
	return asynqLogger{l: l.With(slog.String("component", "asynq"))}
}

// AsynqLevel is the asynq.LogLevel to pair with AsynqLogger(l): the lowest
// level l lets through, so asynq does not drop what slog would print (and
// does not format what slog would drop).
func AsynqLevel(l *slog.Logger) asynq.LogLevel {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelDebug):
		return asynq.DebugLevel
	case l.Enabled(ctx, slog.LevelInfo):
		return asynq.InfoLevel
	case l.Enabled(ctx, slog.LevelWarn):
		return asynq.WarnLevel
	default:
		return asynq.ErrorLevel
	}
}

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) log(level slog.Level, args []interface{}, attrs ...slog.Attr) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.LogAttrs(ctx, level, fmt.Sprint(args...), attrs...)
}

func (a asynqLogger) Debug(args ...interface{}) { a.log(slog.LevelDebug, args) }
func (a asynqLogger) Info(args ...interface{})  { a.log(slog.LevelInfo, args) }
func (a asynqLogger) Warn(args ...interface{}) {
	// asynq warns "Retry exhausted for task id=…" on every archive; the
	// task's own outcome line (job.DefaultMiddleware) already says
	// archived, with the kind and the reason: one line per outcome.
	if s, ok := firstString(args); ok && strings.HasPrefix(s, "Retry exhausted for task") {
		a.log(slog.LevelDebug, args)
		return
	}
	a.log(slog.LevelWarn, args)
}

func firstString(args []interface{}) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}
func (a asynqLogger) Error(args ...interface{}) { a.log(slog.LevelError, args) }
func (a asynqLogger) Fatal(args ...interface{}) {
	a.log(slog.LevelError, args, slog.Bool("fatal", true))
}
