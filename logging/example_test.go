package logging_test

import (
	"os"

	"github.com/hibiken/asynq"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/redis/go-redis/v9"
)

// A process logs its own records, asynq's and go-redis' through one slog
// logger built from LOG_FORMAT and LOG_LEVEL.
func Example() {
	log, err := logging.New(os.Stderr, os.Getenv("LOG_FORMAT"), os.Getenv("LOG_LEVEL"))
	if err != nil {
		panic(err) // names LOG_FORMAT or LOG_LEVEL
	}
	redis.SetLogger(logging.GoRedisLogger(log)) // once, in package main
	cfg := asynq.Config{
		Logger:   logging.AsynqLogger(log),
		LogLevel: logging.AsynqLevel(log),
	}
	_ = cfg
	log.Info("worker configured", "concurrency", 10)
}
