package rdb_test

import (
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.Unix()), Member: member}
}

func optStrings(opts []asynq.Option) []string {
	var out []string
	for _, o := range opts {
		out = append(out, o.String())
	}
	return out
}
