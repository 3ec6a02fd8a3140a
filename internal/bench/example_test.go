package bench_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/plyr-fm/plyrtasks/internal/bench"
)

// A worker child is started with WorkerConfig.Args and reads them back
// with ParseWorkerArgs (`plyrtasks bench worker ARGS`).
func ExampleWorkerConfig_Args() {
	c := bench.WorkerConfig{Redis: "127.0.0.1:6399", Mode: bench.ModeWake, Concurrency: 100,
		TaskCheckInterval: time.Second, ActiveCheckInterval: 20 * time.Millisecond, Linger: time.Second}
	fmt.Println(strings.Join(c.Args(), " "))
	back, err := bench.ParseWorkerArgs(c.Args())
	fmt.Println(back == c, err)
	// Output:
	// --redis 127.0.0.1:6399 --mode wake --concurrency 100 --task-check-interval 1s --active-check-interval 20ms --linger 1s --target 0
	// true <nil>
}

// The frontier's default points: plain workers over check intervals, then
// the presets as woken workers.
func ExampleDefaultFrontier() {
	for _, p := range bench.DefaultFrontier(true) {
		fmt.Println(p.Label)
	}
	// Output:
	// plain, check 50ms
	// plain, check 1s
	// plain, check 5s
	// preset default
	// preset low-latency
	// preset economy
}
