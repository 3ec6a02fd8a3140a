package logcheck_test

import (
	"fmt"
	"log/slog"

	"github.com/plyr-fm/plyrtasks/internal/logcheck"
)

func ExampleFind() {
	var logs logcheck.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("session refreshed", "did", "did:plc:abc")
	logger.Warn("pds said no", "body", `{"accessJwt":"eyJhbGciOi.secret"}`) // a leak

	leaks, _ := logcheck.Find(logs.Bytes(), "eyJhbGciOi.secret")
	for _, l := range leaks {
		fmt.Println(l)
	}
	// Output:
	// secret #1 (raw) on line 2
}
