package strikes_test

import (
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/redisconn"
	"github.com/plyr-fm/plyrtasks/strikes"
)

// TestWatcherOnEmbeddedRedis: `plyrtasks serve` on embedded defaults runs
// on the in-process Redis; strikes reach its watcher through pub/sub there
// too.
func TestWatcherOnEmbeddedRedis(t *testing.T) {
	e, err := redisconn.Embedded(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	rc := e.Spec().Client()
	t.Cleanup(func() { _ = rc.Close() })
	w := startWatcher(t, rc, time.Hour)
	if _, err := strikes.NewStore(rc, quiet()).Strike(t.Context(), rule(t, "export:media", "artist_did=did:plc:bad"), "under review"); err != nil {
		t.Fatal(err)
	}
	if eventually(t, time.Second, func() bool { _, ok := w.Match("export:media", badPayload); return ok }) < 0 {
		t.Fatal("strike not seen within 1s on the embedded Redis")
	}
}
