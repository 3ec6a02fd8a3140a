package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/server"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// A worker runs the handlers of a registry; a producer enqueues through
// package client. In production main builds one registry (handlers.Register)
// and hands it to both: the worker runs it, the client's in-process
// fallback runs the same handlers when Redis is unavailable.
func Example() {
	ctx := context.Background()
	redisServer, err := redistest.New(redistest.Options{}) // a throwaway redis-server
	if err != nil {
		panic(err)
	}
	defer redisServer.Stop()
	rc := redis.NewClient(&redis.Options{Addr: redisServer.Addr})
	defer rc.Close()

	// The handler reports to the example through a channel: the worker may
	// run the task before Enqueue has returned.
	ran := make(chan string, 1)
	reg := job.NewRegistry(tasks.All())
	job.Register(reg, func(ctx context.Context, j *job.Job[tasks.CopyrightScanArgs]) error {
		ran <- fmt.Sprintf("scanning track %d (attempt %d)", j.Args.TrackID, j.Attempt+1)
		return nil
	})

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	worker := server.New(rc, reg, server.Options{Concurrency: 4, Logger: quiet})
	if err := worker.Start(ctx); err != nil {
		panic(err)
	}
	defer worker.Shutdown()

	producer := client.New(rc, client.Options{Logger: quiet})
	defer producer.Close(ctx)
	res, err := producer.ScheduleCopyrightScan(ctx, 42, "https://cdn.plyr.fm/audio/42.mp3")
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Outcome, res.Kind)

	select {
	case line := <-ran:
		fmt.Println(line)
	case <-time.After(10 * time.Second):
		fmt.Println("not processed")
	}
	fmt.Println("ready:", worker.Ready(ctx) == nil)
	// Output:
	// enqueued copyright:scan
	// scanning track 42 (attempt 1)
	// ready: true
}

// Run blocks until its context ends (SIGTERM in main), then drains:
// running tasks get ShutdownTimeout to finish, and those that do not go
// back to the queue without using up a retry.
func ExampleServer_Run() {
	redisServer, err := redistest.New(redistest.Options{})
	if err != nil {
		panic(err)
	}
	defer redisServer.Stop()
	rc := redis.NewClient(&redis.Options{Addr: redisServer.Addr})
	defer rc.Close()

	// In main: ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	ctx, stop := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer stop()

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	worker := server.New(rc, job.NewRegistry(tasks.All()), server.Options{ShutdownTimeout: 20 * time.Second, Logger: quiet})
	if err := worker.Run(ctx); err != nil {
		panic(err)
	}
	fmt.Println("drained:", worker.Ready(context.Background()) != nil)
	// Output:
	// drained: true
}
