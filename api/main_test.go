package api

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

// newClient returns a real producer client in namespace "plyr" that
// returns ErrUnavailable instead of running tasks in-process, unless o says
// otherwise. rdb nil means no Redis.
func newClient(t *testing.T, rdb redis.UniversalClient, o client.Options) *client.Client {
	t.Helper()
	if o.Namespace == "" {
		o.Namespace = "plyr"
	}
	if o.Fallback == "" {
		o.Fallback = client.FallbackError
	}
	o.Logger = logging.Discard()
	c := client.New(rdb, o)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}
