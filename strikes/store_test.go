package strikes_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/internal/redistest"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/strikes"
	"github.com/plyr-fm/plyrtasks/tasks"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }

func rule(t *testing.T, kind, arg string) strikes.Rule {
	t.Helper()
	r, err := strikes.ParseRule(kind, arg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func quiet() strikes.Options { return strikes.Options{Namespace: "tst", Logger: logging.Discard()} }

func TestStoreStrikeListRestore(t *testing.T) {
	rc := srv.Client(t, srv.DB(t))
	s := strikes.NewStore(rc, quiet())
	ctx := strikes.WithActor(t.Context(), "cli:alice@ops")

	artist := rule(t, "export:media", "artist_did=did:plc:bad")
	whole := rule(t, "pds:like", "")
	before := time.Now().Add(-time.Second)
	got, err := s.Strike(ctx, artist, "  artist under review  ")
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != "artist under review" || got.By != "cli:alice@ops" || got.At.Before(before) || got.Key != "export:media|artist_did=did:plc:bad" {
		t.Errorf("Strike = %+v", got)
	}
	if _, err := s.Strike(t.Context(), whole, "like storm"); err != nil {
		t.Fatal(err)
	}
	// Striking again replaces the reason.
	if _, err := s.Strike(ctx, whole, "like storm from one client"); err != nil {
		t.Fatal(err)
	}

	// Stored as documented: the hash field is the key, the value JSON.
	raw, err := rc.HGet(t.Context(), "tst:strikes", "export:media|artist_did=did:plc:bad").Result()
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec["reason"] != "artist under review" || rec["by"] != "cli:alice@ops" || rec["at"] == nil {
		t.Errorf("stored record %s (%v)", raw, err)
	}

	list, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != "export:media|artist_did=did:plc:bad" || list[1].Key != "pds:like" ||
		list[1].Reason != "like storm from one client" || list[1].By != "cli:alice@ops" {
		t.Errorf("List = %+v", list)
	}

	removed, err := s.Restore(t.Context(), whole)
	if err != nil || removed.Reason != "like storm from one client" {
		t.Fatalf("Restore = %+v, %v", removed, err)
	}
	if _, err := s.Restore(t.Context(), whole); !errors.Is(err, strikes.ErrNotStruck) {
		t.Errorf("second Restore = %v, want ErrNotStruck", err)
	}
	// Restoring the type does not lift a strike on one of its arguments.
	if _, err := s.Restore(t.Context(), rule(t, "export:media", "")); !errors.Is(err, strikes.ErrNotStruck) {
		t.Errorf("Restore(export:media) = %v, want ErrNotStruck", err)
	}
	list, _ = s.List(t.Context())
	if len(list) != 1 || list[0].Key != artist.Key() {
		t.Errorf("List after restore = %+v", list)
	}
}

func TestStoreRejectsBadInput(t *testing.T) {
	s := strikes.NewStore(srv.Client(t, srv.DB(t)), quiet())
	tests := []struct {
		rule   strikes.Rule
		reason string
		field  string
	}{
		{strikes.Rule{Kind: "pds:like"}, "", "reason"},
		{strikes.Rule{Kind: "pds:like"}, "   ", "reason"},
		{strikes.Rule{Kind: "pds:like"}, "two\nlines", "reason"},
		{strikes.Rule{Kind: "pds:like"}, string(make([]byte, strikes.MaxReasonLen+1)), "reason"},
		{strikes.Rule{}, "why", "type"},
		{strikes.Rule{Kind: "pds:like", Field: "x"}, "why", "arg"},
	}
	for _, tt := range tests {
		_, err := s.Strike(t.Context(), tt.rule, tt.reason)
		var fe *tasks.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Strike(%+v, %q) = %v, want a FieldError on %q", tt.rule, tt.reason, err, tt.field)
		}
	}
}

// TestUnreadableRecordStillBlocks: a corrupt value must not let through
// what its key names.
func TestUnreadableRecordStillBlocks(t *testing.T) {
	rc := srv.Client(t, srv.DB(t))
	if err := rc.HSet(t.Context(), "tst:strikes", "pds:like", "{not json", "not a rule|", "x").Err(); err != nil {
		t.Fatal(err)
	}
	w := strikes.NewWatcher(rc, quiet())
	if err := w.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, ok := w.Match("pds:like", []byte(`{}`))
	if !ok || st.Reason != "unreadable strike record" {
		t.Errorf("Match = %+v, %v; want a strike with the unreadable reason", st, ok)
	}
	if n := len(w.Strikes()); n != 1 {
		t.Errorf("%d strikes, want 1 (the key that names no rule is skipped)", n)
	}
}

// eventually waits up to d for cond.
func eventually(t *testing.T, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			return -1
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func startWatcher(t *testing.T, rc redis.UniversalClient, poll time.Duration) *strikes.Watcher {
	t.Helper()
	o := quiet()
	o.PollInterval = poll
	w := strikes.NewWatcher(rc, o)
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

var badPayload = []byte(`{"export_id":"e1","artist_did":"did:plc:bad"}`)

func TestWatcherSeesChangesThroughPubSub(t *testing.T) {
	db := srv.DB(t)
	// The poll is an hour: only an announcement can deliver within 1s.
	w := startWatcher(t, srv.Client(t, db), time.Hour)
	s := strikes.NewStore(srv.Client(t, db), quiet())
	artist := rule(t, "export:media", "artist_did=did:plc:bad")

	if _, ok := w.Match("export:media", badPayload); ok {
		t.Fatal("matched before any strike")
	}
	if _, err := s.Strike(t.Context(), artist, "artist under review"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Second, func() bool { _, ok := w.Match("export:media", badPayload); return ok })
	if took < 0 {
		t.Fatal("strike not seen within 1s")
	}
	t.Logf("strike seen after %s", took)
	if _, err := s.Restore(t.Context(), artist); err != nil {
		t.Fatal(err)
	}
	if eventually(t, time.Second, func() bool { _, ok := w.Match("export:media", badPayload); return !ok }) < 0 {
		t.Fatal("restore not seen within 1s")
	}
}

// TestWatcherPollCatchesLostAnnouncements writes a strike without
// announcing it (what a watcher sees when the message was published while
// its connection was down).
func TestWatcherPollCatchesLostAnnouncements(t *testing.T) {
	db := srv.DB(t)
	rc := srv.Client(t, db)
	slow := startWatcher(t, rc, time.Hour)
	fast := startWatcher(t, rc, 200*time.Millisecond)
	if err := rc.HSet(t.Context(), "tst:strikes", "export:media|artist_did=did:plc:bad",
		`{"reason":"silent","by":"test","at":"2026-01-01T00:00:00Z"}`).Err(); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Second, func() bool { _, ok := fast.Match("export:media", badPayload); return ok })
	if took < 0 {
		t.Fatal("the 200ms poll did not pick up the strike within 1s")
	}
	t.Logf("poll picked it up after %s", took)
	if _, ok := slow.Match("export:media", badPayload); ok {
		t.Error("the watcher without a poll due saw an unannounced strike: the test no longer isolates the poll")
	}
}

// TestWatcherResubscribesAfterRedisRestart restarts Redis under a watcher
// whose poll never fires: strikes made after the restart still arrive,
// through the re-established subscription.
func TestWatcherResubscribesAfterRedisRestart(t *testing.T) {
	own := redistest.Start(t, redistest.Options{AOF: true})
	rc := redis.NewClient(&redis.Options{Addr: own.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	w := startWatcher(t, rc, time.Hour)
	if err := own.Restart(false); err != nil {
		t.Fatal(err)
	}
	s := strikes.NewStore(rc, quiet())
	artist := rule(t, "export:media", "artist_did=did:plc:bad")
	// The store's client may need a moment to reconnect too.
	if eventually(t, 5*time.Second, func() bool { _, err := s.Strike(context.Background(), artist, "after restart"); return err == nil }) < 0 {
		t.Fatal("cannot strike after the restart")
	}
	took := eventually(t, 5*time.Second, func() bool { _, ok := w.Match("export:media", badPayload); return ok })
	if took < 0 {
		t.Fatal("strike made after a Redis restart not seen within 5s with the poll off")
	}
	t.Logf("seen %s after the strike", took)
}

func TestWatcherWithoutRedis(t *testing.T) {
	// Nothing listens on this port.
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rc.Close() })
	w := startWatcher(t, rc, 100*time.Millisecond)
	if w.Loaded() {
		t.Error("Loaded with Redis down")
	}
	if _, ok := w.Match("pds:like", []byte(`{}`)); ok {
		t.Error("matched with no strikes read")
	}
	if err := w.Start(t.Context()); err == nil {
		t.Error("second Start did not fail")
	}

	nilw := strikes.NewWatcher(nil, quiet())
	if err := nilw.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	nilw.Shutdown()
	if err := nilw.Check("pds:like", nil); err != nil {
		t.Errorf("Check without Redis = %v", err)
	}
}

// TestWatcherRecoversWhenRedisComesUp: a watcher started while Redis is
// down matches nothing, then picks strikes up once Redis is back, through
// its retried subscription (the poll is an hour).
func TestWatcherRecoversWhenRedisComesUp(t *testing.T) {
	own := redistest.Start(t, redistest.Options{AOF: true})
	rc := redis.NewClient(&redis.Options{Addr: own.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rc.Close() })
	s := strikes.NewStore(rc, quiet())
	artist := rule(t, "export:media", "artist_did=did:plc:bad")
	if _, err := s.Strike(t.Context(), artist, "struck before the outage"); err != nil {
		t.Fatal(err)
	}
	own.Kill()
	w := startWatcher(t, rc, time.Hour)
	if w.Loaded() {
		t.Fatal("loaded with Redis down")
	}
	if _, ok := w.Match("export:media", badPayload); ok {
		t.Fatal("matched with Redis down")
	}
	if err := own.Restart(false); err != nil {
		t.Fatal(err)
	}
	// The strike made before the outage survived (AOF) and is read on
	// (re)subscription.
	took := eventually(t, 5*time.Second, func() bool { _, ok := w.Match("export:media", badPayload); return ok })
	if took < 0 {
		t.Fatal("strike not picked up within 5s of Redis coming back")
	}
	t.Logf("picked up %s after Redis came back", took)
}
