package config_test

import (
	"fmt"

	"github.com/plyr-fm/plyrtasks/config"
)

// Every bad variable is reported at once, by name, with what is allowed.
func ExampleLoadEnv() {
	_, err := config.LoadEnv(map[string]string{
		"WORKER_CONCURRENCY":  "ten",
		"TASK_CHECK_INTERVAL": "0s",
		"SHUTDOWN_TIMEOUT":    "1m",
	})
	fmt.Println(err)
	// Output:
	// WORKER_CONCURRENCY="ten": not an integer
	// SHUTDOWN_TIMEOUT=1m is out of range: allowed 1s..20s
	// TASK_CHECK_INTERVAL=0s is out of range: allowed 10ms..5s
}

// Redacted is for a debug print: secrets only say whether they are set.
func ExampleConfig_Redacted() {
	cfg, err := config.LoadEnv(map[string]string{
		"REDIS_URL": "redis://:hunter2hunter2@10.0.0.5:6379/1",
		"API_TOKEN": "0123456789abcdef0123",
	})
	if err != nil {
		panic(err)
	}
	r := cfg.Redacted()
	fmt.Println(r["REDIS_URL"])
	fmt.Println(r["API_TOKEN"], r["SESSION_ENCRYPTION_KEY"])
	fmt.Println(r["TASK_CHECK_INTERVAL"], r["HTTP_ADDR"])
	// Output:
	// redis://:xxxxx@10.0.0.5:6379/1
	// set unset
	// 1s 127.0.0.1:8080
}

// The worker test runs asynq with every timing setting at its minimum and
// at its maximum.
func ExampleTimingRanges() {
	r := config.TimingRanges()["TASK_CHECK_INTERVAL"]
	cfg, err := config.LoadEnv(map[string]string{"TASK_CHECK_INTERVAL": r.Max.String()})
	if err != nil {
		panic(err)
	}
	fmt.Println(r, cfg.Timing.TaskCheckInterval, cfg.Timing.MaxDrain())
	// Output:
	// 10ms..5s 5s 28s
}
