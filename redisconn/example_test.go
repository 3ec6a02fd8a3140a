package redisconn_test

import (
	"context"
	"fmt"

	"github.com/plyr-fm/plyrtasks/redisconn"
)

// The Sentinel form keeps what asynq.ParseRedisURI drops, and String never
// shows a password.
func ExampleParse() {
	s, err := redisconn.Parse("redis-sentinel://app:s3cret@10.0.0.1,10.0.0.2:26380/2?master=plyr&sentinel_password=t0ps3cret")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Mode, s.Addrs, s.DB, s.MasterName, s.Username, s.Password != "", s.SentinelPassword != "")
	fmt.Println(s)
	// Output:
	// sentinel [10.0.0.1:26379 10.0.0.2:26380] 2 plyr app true true
	// redis-sentinel://app:xxxxx@10.0.0.1:26379,10.0.0.2:26380/2?master=plyr&sentinel_password=xxxxx
}

// With REDIS_URL unset, plyrtasks runs the embedded Redis; other local
// processes reach it through URL().
func ExampleEmbedded() {
	ctx := context.Background()
	e, err := redisconn.Embedded(ctx, "")
	if err != nil {
		panic(err)
	}
	defer e.Close()
	c := e.Spec().Client()
	defer c.Close()
	fmt.Println(c.Ping(ctx).Val())
	// Output: PONG
}
