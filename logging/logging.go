// Package logging builds plyrtasks' log/slog logger from LOG_FORMAT and
// LOG_LEVEL, and adapts it to asynq's Logger interface so that asynq's own
// messages land in the same stream, at the same levels, in the same format.
//
// Text output uses lmittmann/tint: coloured when the writer is a terminal,
// plain otherwise (a file, a pipe, a container log driver). JSON output uses
// slog.JSONHandler, one object per line, for log shippers.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
)

// Formats accepted by New (LOG_FORMAT).
const (
	FormatText = "text"
	FormatJSON = "json"
)

// ParseLevel maps a LOG_LEVEL value (debug, info, warn, error; any case) to
// a slog.Level.
func ParseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
}

// New returns a logger writing to w in format "text" or "json" (LOG_FORMAT;
// empty means text) that drops records below level (LOG_LEVEL; empty means
// info). Text is coloured only when w is a terminal.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case FormatText, "":
		return slog.New(tint.NewHandler(w, &tint.Options{
			Level:      lvl,
			TimeFormat: time.DateTime + ".000",
			NoColor:    !IsTerminal(w),
		})), nil
	case FormatJSON:
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})), nil
	}
	return nil, fmt.Errorf("LOG_FORMAT=%q: want text or json", format)
}

// IsTerminal reports whether w is a terminal (so colour escapes are
// welcome). Anything that is not an *os.File is not a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// Discard returns a logger that drops everything (tests, quiet tools).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
