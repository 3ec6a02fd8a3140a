package strikes_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// A rule names a task type, optionally narrowed to one value of a
// top-level payload field; ValidateFor catches a misspelt field.
func ExampleParseRule() {
	r, err := strikes.ParseRule("export:media", "artist_did=did:plc:abc")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Key())

	typo, _ := strikes.ParseRule("export:media", "artist=did:plc:abc")
	fmt.Println(typo.ValidateFor(tasks.All()))
	// Output:
	// export:media|artist_did=did:plc:abc
	// arg: export:media has no field "artist" (fields: artist_did, export_id)
}

// Operators strike through a Store; every worker and producer matches
// through its Watcher, which sees the change within a second.
func ExampleWatcher() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	opts := strikes.Options{Namespace: "plyr"}

	w := strikes.NewWatcher(rdb, opts)
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Shutdown()

	rule, _ := strikes.ParseRule("export:media", "artist_did=did:plc:abc")
	store := strikes.NewStore(rdb, opts)
	if _, err := store.Strike(strikes.WithActor(ctx, "cli:ops"), rule, "artist under review"); err != nil {
		log.Fatal(err)
	}

	// Producer side, before an enqueue (client: w.EnqueueMiddleware()).
	err := w.Check("export:media", []byte(`{"export_id":"e1","artist_did":"did:plc:abc"}`))
	fmt.Println(errors.Is(err, job.ErrStruck))
}
