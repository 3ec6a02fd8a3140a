package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Schedule a copyright scan from backend code. The scan is unique per
// track: asking again while the first is queued returns it as a duplicate.
func ExampleClient_ScheduleCopyrightScan() {
	ctx := context.Background()
	redisServer, err := redistest.New(redistest.Options{}) // a throwaway redis-server
	if err != nil {
		panic(err)
	}
	defer redisServer.Stop()
	rc := redis.NewClient(&redis.Options{Addr: redisServer.Addr})
	defer rc.Close()

	c := client.New(rc, client.Options{})
	defer c.Close(ctx)

	first, err := c.ScheduleCopyrightScan(ctx, 42, "https://cdn.plyr.fm/audio/42.mp3")
	if err != nil {
		panic(err)
	}
	fmt.Println(first.Outcome, first.Kind, first.Queue, first.State)

	again, err := c.ScheduleCopyrightScan(ctx, 42, "https://cdn.plyr.fm/audio/42.mp3")
	if err != nil {
		panic(err)
	}
	fmt.Println(again.Outcome, "of the first task:", again.ID == first.ID)

	later, err := c.ScheduleCopyrightScan(ctx, 43, "https://cdn.plyr.fm/audio/43.mp3", client.In(time.Hour))
	if err != nil {
		panic(err)
	}
	fmt.Println(later.Outcome, later.State)
	// Output:
	// enqueued copyright:scan plyr:default pending
	// duplicate of the first task: true
	// enqueued scheduled
}

// EnqueueRaw is for callers that hold a type name and JSON (the HTTP API,
// the CLI): the payload is validated against the type's declaration before
// anything reaches Redis, and the error names the field.
func ExampleClient_EnqueueRaw() {
	c := client.New(nil, client.Options{})
	_, err := c.EnqueueRaw(context.Background(), "copyright:scan", []byte(`{"track_id": "forty-two", "audio_url": "https://a/b.mp3"}`))
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		fmt.Println("bad field:", fe.Field)
	}
	// Output:
	// bad field: track_id
}

// Without Redis (or when an enqueue fails) the task runs in-process through
// the worker's handlers and middleware.
func Example_fallbackInline() {
	ctx := context.Background()
	reg := job.NewRegistry(tasks.All())
	job.Register(reg, func(ctx context.Context, j *job.Job[tasks.UnlikeArgs]) error {
		fmt.Println("deleting", j.Args.LikeURI)
		return nil
	})
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	c := client.New(nil, client.Options{Inline: reg, Logger: quiet})
	defer c.Close(ctx)

	res, err := c.ScheduleUnlike(ctx, "session-1", "at://did:plc:abc/fm.plyr.like/3k")
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Outcome, res.State, res.FallbackReason)
	// Output:
	// deleting at://did:plc:abc/fm.plyr.like/3k
	// inline completed no_redis
}
