package api

import (
	"fmt"
	"io"
	"log/slog"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func fmtErr(format string, a ...any) error { return fmt.Errorf(format, a...) }
