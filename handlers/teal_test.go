package handlers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const (
	playCol   = "fm.teal.feed.play"
	statusCol = "fm.teal.actor.status"
)

func (e *atEnv) scrobbler(t *testing.T) atUser {
	t.Helper()
	u := e.newUser(t)
	if err := e.st.SavePreferences(context.Background(), store.Preferences{DID: u.DID, TealScrobbling: true}); err != nil {
		t.Fatal(err)
	}
	return u
}

func scrobble(u atUser, track int64, at time.Time) tasks.TealScrobbleArgs {
	return tasks.TealScrobbleArgs{SessionID: u.SessionID, TrackID: track, TrackTitle: fmt.Sprintf("Song %d", track), ArtistName: "Band", PlayedAt: &at}
}

func TestTealScrobbleWritesPlayAndStatusOnce(t *testing.T) {
	e := newATEnv(t)
	u := e.scrobbler(t)
	at := time.Now().UTC().Add(-30 * time.Second).Truncate(time.Millisecond)
	dur, album := 215, "The LP"
	args := tasks.TealScrobbleArgs{SessionID: u.SessionID, TrackID: 42, TrackTitle: "Song", ArtistName: "Band", Duration: &dur, AlbumName: &album, PlayedAt: &at}

	first := e.run(t, args, "scrobble-1", 0)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	rkey := pds.TID(at, 42)
	wantURI := "at://" + u.DID + "/" + playCol + "/" + rkey
	if first.Out["play_uri"] != wantURI || first.Out["status"] != "written" {
		t.Fatalf("result = %v, want play_uri %s and status written", first.Out, wantURI)
	}
	view := map[string]any{
		"trackName": "Song", "artists": []any{map[string]any{"artistName": "Band"}}, "duration": 215, "releaseName": "The LP",
		"playedTime": pds.Datetime(at), "originUrl": "https://plyr.fm/track/42", "musicServiceBaseDomain": "plyr.fm", "submissionClientAgent": "plyr.fm/1.0",
	}
	play := map[string]any{"$type": playCol}
	for k, v := range view {
		play[k] = v
	}
	if got := atJSON(t, e.record(t, u, playCol, rkey).Fields(t)); got != atJSON(t, play) {
		t.Fatalf("play record\n got %s\nwant %s", got, atJSON(t, play))
	}
	status := map[string]any{"$type": statusCol, "time": pds.Datetime(at), "expiry": pds.Datetime(at.Add(10 * time.Minute)), "item": view}
	if got := atJSON(t, e.record(t, u, statusCol, "self").Fields(t)); got != atJSON(t, status) {
		t.Fatalf("status record\n got %s\nwant %s", got, atJSON(t, status))
	}

	// A retry of the same task (the worker lost the ack, say) and a re-sent
	// task with the same payload both land on the same play.
	if r := e.run(t, args, "scrobble-1", 1); r.Err != nil || r.Out["play_uri"] != wantURI {
		t.Fatalf("retry: %v %v", r.Err, r.Out)
	}
	if r := e.run(t, args, "scrobble-2", 0); r.Err != nil || r.Out["play_uri"] != wantURI {
		t.Fatalf("re-sent: %v %v", r.Err, r.Out)
	}
	if n := len(e.records(t, u, playCol)); n != 1 {
		t.Fatalf("%d play records, want 1", n)
	}
	if n := len(e.records(t, u, statusCol)); n != 1 {
		t.Fatalf("%d status records, want 1", n)
	}
}

// One session's plays by play time: the same track within 60 s is one
// play; another track, or the same track minutes later, is another. The
// status never goes back to an older play.
func TestTealScrobbleDedupeWindow(t *testing.T) {
	e := newATEnv(t)
	u := e.scrobbler(t)
	t0 := time.Now().UTC().Add(-6 * time.Minute).Truncate(time.Millisecond)
	steps := []struct {
		name      string
		track     int64
		at        time.Time
		dupOf     time.Time // zero: a new play
		dupTrack  int64
		plays     int
		statusAt  time.Time
		statusRes string
	}{
		{"first play", 1, t0, time.Time{}, 0, 1, t0, "written"},
		{"same track 30s later is the same play", 1, t0.Add(30 * time.Second), t0, 1, 1, t0, ""},
		{"same track 59s earlier is the same play", 1, t0.Add(-59 * time.Second), t0, 1, 1, t0, ""},
		{"another track 30s later", 2, t0.Add(30 * time.Second), time.Time{}, 0, 2, t0.Add(30 * time.Second), "written"},
		{"same track 5 min later", 1, t0.Add(5 * time.Minute), time.Time{}, 0, 3, t0.Add(5 * time.Minute), "written"},
		{"an older play keeps the newer status", 3, t0.Add(time.Minute), time.Time{}, 0, 4, t0.Add(5 * time.Minute), "newer-status-kept"},
	}
	for _, s := range steps {
		r := e.run(t, scrobble(u, s.track, s.at), "", 0)
		if r.Err != nil {
			t.Fatalf("%s: %v", s.name, r.Err)
		}
		if !s.dupOf.IsZero() {
			want := "at://" + u.DID + "/" + playCol + "/" + pds.TID(s.dupOf, s.dupTrack)
			if r.Out["duplicate_of"] != want {
				t.Fatalf("%s: result %v, want duplicate_of %s", s.name, r.Out, want)
			}
		} else if r.Out["status"] != s.statusRes || r.Out["play_uri"] != "at://"+u.DID+"/"+playCol+"/"+pds.TID(s.at, s.track) {
			t.Fatalf("%s: result %v", s.name, r.Out)
		}
		if n := len(e.records(t, u, playCol)); n != s.plays {
			t.Fatalf("%s: %d plays, want %d", s.name, n, s.plays)
		}
		if got := e.record(t, u, statusCol, "self").Fields(t)["time"]; got != pds.Datetime(s.statusAt) {
			t.Fatalf("%s: status time %v, want %s", s.name, got, pds.Datetime(s.statusAt))
		}
	}
}

func TestTealScrobbleOffWritesNothing(t *testing.T) {
	e := newATEnv(t)
	u := e.newUser(t) // no preferences: scrobbling is off
	r := e.run(t, scrobble(u, 1, time.Now()), "", 0)
	if r.Err != nil || r.Out["skipped"] != "teal scrobbling is off" {
		t.Fatalf("run = %v %v", r.Err, r.Out)
	}
	if n := e.proxy.Count("com.atproto.repo.putRecord"); n != 0 {
		t.Fatalf("%d writes with scrobbling off", n)
	}
	if n := len(e.records(t, u, playCol)) + len(e.records(t, u, statusCol)); n != 0 {
		t.Fatalf("%d records with scrobbling off", n)
	}
}

// Without played_at the first attempt fixes the play time; its retries
// reuse it (so the record key), however late they run.
func TestTealScrobbleWithoutPlayedAtKeepsTheFirstAttemptsTime(t *testing.T) {
	e := newATEnv(t)
	u := e.scrobbler(t)
	args := tasks.TealScrobbleArgs{SessionID: u.SessionID, TrackID: 7, TrackTitle: "Song", ArtistName: "Band"}

	e.proxy.Add(pdstest.FailTimes("com.atproto.repo.putRecord", 1, pdstest.ServerError()))
	before := time.Now().UTC()
	if r := e.run(t, args, "no-time", 0); r.Err == nil || job.IsPermanent(r.Err) {
		t.Fatalf("first attempt: err = %v, want a retryable 502", r.Err)
	}
	after := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	r := e.run(t, args, "no-time", 1)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	at, err := pds.TIDTime(atRKey(t, r.Out["play_uri"].(string)))
	if err != nil || at.Before(before) || at.After(after) {
		t.Fatalf("play time %s is not the first attempt's (%s..%s)", at, before, after)
	}
	if n := len(e.records(t, u, playCol)); n != 1 {
		t.Fatalf("%d plays, want 1", n)
	}
}

func TestTealScrobbleExpiredSessionIsPermanent(t *testing.T) {
	e := newATEnv(t)
	r := e.run(t, tasks.TealScrobbleArgs{SessionID: "gone", TrackID: 1, TrackTitle: "S", ArtistName: "B"}, "", 0)
	if !job.IsPermanent(r.Err) || !errorsIsExpired(r.Err) {
		t.Fatalf("err = %v, want a permanent session expired", r.Err)
	}
}
