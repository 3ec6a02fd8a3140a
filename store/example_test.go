package store_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/plyr-fm/plyrtasks/store"
)

// Open the embedded SQLite store (what `plyrtasks serve` does with no
// DATABASE_URL), migrate it and use it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "plyrtasks-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := store.Open(ctx, store.Options{
		DataDir:       dir,                                            // file dir/plyrtasks.db
		EncryptionKey: "cGx5cnRhc2tzLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=", // SESSION_ENCRYPTION_KEY
	})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil { // safe to run at every start
		log.Fatal(err)
	}

	if err := st.UpsertArtist(ctx, store.Artist{DID: "did:plc:example", Handle: "example.plyr.fm"}); err != nil {
		log.Fatal(err)
	}
	job, created, err := st.CreateJobOnce(ctx, store.Job{Type: "export:media", OwnerDID: "did:plc:example"})
	if err != nil {
		log.Fatal(err)
	}
	again, createdAgain, err := st.CreateJobOnce(ctx, store.Job{Type: "export:media", OwnerDID: "did:plc:example"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Dialect(), job.Status, created, createdAgain, again.ID == job.ID)
	// Output: sqlite pending true false true
}
