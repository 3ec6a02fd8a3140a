package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/server"
)

// The 2025-12-30 incident: changing one worker timing setting made one-off
// tasks silently stop while periodic tasks kept running. Every timing
// setting at its minimum, and at its maximum: one-off, delayed and periodic
// tasks all run. (The maximum case waits for up to 1.5×5s polling plus a
// 10s forwarder tick, hence the 30s bound.)
func TestTimingExtremesRunEveryKindOfTask(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maximum bool
	}{{"minimum", false}, {"maximum", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			rec := &recorder{}
			o := server.Options{Logger: discardLogger()}
			setAll(&o, tc.maximum)
			s := e.start(t, testRegistry(rec), o)
			oneOff, err := e.client.Enqueue(ctx, noopArgs{N: 1})
			if err != nil {
				t.Fatal(err)
			}
			delayed, err := e.client.Enqueue(ctx, noopArgs{N: 2}, client.In(time.Second))
			if err != nil || delayed.State != "scheduled" {
				t.Fatalf("delayed = %+v, %v", delayed, err)
			}
			seen := func() (one, del, tick bool) {
				for _, tk := range rec.all() {
					switch {
					case tk.ID == oneOff.ID:
						one = true
					case tk.ID == delayed.ID:
						del = true
					case tk.Kind == "test:tick":
						tick = true
					}
				}
				return
			}
			start := time.Now()
			waitFor(t, 30*time.Second, "one-off, delayed and periodic tasks", func() bool {
				one, del, tick := seen()
				return one && del && tick
			})
			t.Logf("all three ran within %s", time.Since(start).Round(time.Millisecond))
			s.Shutdown()
		})
	}
}
