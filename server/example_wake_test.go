package server_test

import (
	"fmt"
	"time"

	"github.com/plyr-fm/plyrtasks/server"
)

// A woken worker: idle, one Redis script per TaskCheckInterval and a wake
// subscription; producers wire client.WakeWorkers(rdb, namespace, 0) into
// client.Options.EnqueueMiddleware. Linger must stay above the producers'
// coalescing window.
func ExampleWake() {
	o := server.Options{
		TaskCheckInterval: time.Second,
		Wake:              server.Wake{Enabled: true, ActiveCheckInterval: 20 * time.Millisecond, Linger: 100 * time.Millisecond},
	}
	fmt.Println(o.Validate())
	o.Wake.Linger = time.Second
	fmt.Println(o.Validate())
	// Output:
	// server: Wake.Linger = 100ms is out of range 200ms..1m0s
	// <nil>
}
