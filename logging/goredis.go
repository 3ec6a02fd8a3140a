package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// GoRedisLogger adapts l to go-redis' logger interface, for package main to
// install once: redis.SetLogger(logging.GoRedisLogger(log)). Without it
// go-redis prints its own lines ("sentinel: new master=…", pool dial
// failures) to stderr outside the LOG_FORMAT stream.
//
// go-redis gives no level: a line that reports a failure is logged at warn,
// everything else (connection bookkeeping) at debug. Records carry
// component=go-redis. go-redis logs addresses, never credentials.
func GoRedisLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...interface{})
} {
	return goRedisLogger{l: l.With(slog.String("component", "go-redis"))}
}

type goRedisLogger struct{ l *slog.Logger }

func (g goRedisLogger) Printf(ctx context.Context, format string, v ...interface{}) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := fmt.Sprintf(format, v...)
	level := slog.LevelDebug
	lower := strings.ToLower(msg)
	for _, w := range []string{"fail", "error", "unreachable", "wrongpass", "timeout", "refused"} {
		if strings.Contains(lower, w) {
			level = slog.LevelWarn
			break
		}
	}
	if g.l.Enabled(ctx, level) {
		g.l.Log(ctx, level, msg)
	}
}
