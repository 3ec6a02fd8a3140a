package handlers

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const profileCol = "fm.plyr.actor.profile"

// syncWorld is an artist with two albums of published tracks, who liked
// three of them (oldest first: t1, t3, t2).
type syncWorld struct {
	u              atUser
	t1, t2, t3, t4 store.Track
	a1, a2         store.Album
}

func (e *atEnv) syncWorld(t *testing.T) syncWorld {
	t.Helper()
	w := syncWorld{u: e.newUser(t)}
	e.artist(t, w.u)
	w.t1, w.t2, w.t3, w.t4 = e.track(t, w.u, "One"), e.track(t, w.u, "Two"), e.track(t, w.u, "Three"), e.track(t, w.u, "Four")
	w.a1 = e.album(t, w.u, "First", w.t1, w.t2)
	w.a2 = e.album(t, w.u, "Second", w.t4, w.t3)
	base := time.Now().Add(-time.Hour)
	for i, tr := range []store.Track{w.t1, w.t3, w.t2} {
		e.like(t, w.u, tr, base.Add(time.Duration(i)*time.Minute))
	}
	return w
}

func (w syncWorld) args() tasks.ATProtoSyncArgs {
	return tasks.ATProtoSyncArgs{SessionID: w.u.SessionID, DID: w.u.DID}
}

func (e *atEnv) listItems(t *testing.T, u atUser, rkey string) string {
	t.Helper()
	return atJSON(t, e.record(t, u, listCol, rkey).Fields(t)["items"])
}

func TestATProtoSyncWritesProfileAlbumsAndLikedList(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	ctx := context.Background()

	out := e.mustRun(t, w.args())
	if out["profile"] != "written" || out["liked_items"] != float64(3) || len(out["album_lists"].([]any)) != 2 {
		t.Fatalf("result = %v", out)
	}
	prof := e.record(t, w.u, profileCol, "self")
	if f := prof.Fields(t); len(f) != 2 || f["$type"] != profileCol || f["createdAt"] == nil {
		t.Fatalf("profile = %v", f)
	}
	if e.listItems(t, w.u, AlbumListRecordKey(w.a1)) != atJSON(t, items(w.t1, w.t2)) ||
		e.listItems(t, w.u, AlbumListRecordKey(w.a2)) != atJSON(t, items(w.t4, w.t3)) {
		t.Fatal("album lists are not in album order")
	}
	liked := e.record(t, w.u, listCol, LikedListRecordKey())
	lf := liked.Fields(t)
	want := map[string]any{"$type": listCol, "name": "Liked Tracks", "listType": "liked", "items": items(w.t2, w.t3, w.t1), "createdAt": lf["createdAt"]}
	if atJSON(t, lf) != atJSON(t, want) {
		t.Fatalf("liked list\n got %s\nwant %s", atJSON(t, lf), atJSON(t, want))
	}
	if n := len(e.records(t, w.u, listCol)); n != 3 {
		t.Fatalf("%d lists, want 3", n)
	}
	prefs, _ := e.st.GetPreferences(ctx, w.u.DID)
	if prefs.LikedListURI != liked.URI || prefs.LikedListCID != liked.CID || prefs.ProfileCID != prof.CID {
		t.Fatalf("preferences = %+v", prefs)
	}
	a1, _ := e.st.GetAlbum(ctx, w.a1.ID)
	if a1.ListURI != "at://"+w.u.DID+"/"+listCol+"/"+AlbumListRecordKey(w.a1) {
		t.Fatalf("album row list URI = %q", a1.ListURI)
	}

	// A second sync with nothing new writes nothing.
	puts := e.proxy.Count("com.atproto.repo.putRecord")
	if out := e.mustRun(t, w.args()); out["profile"] != "unchanged" {
		t.Fatalf("second sync = %v", out)
	}
	if n := e.proxy.Count("com.atproto.repo.putRecord") - puts; n != 0 {
		t.Fatalf("second sync wrote %d records", n)
	}
}

// Two syncs of one user at once (two logins in a row) make one record per
// list and one profile.
func TestATProtoSyncConcurrentRunsMakeOneRecordPerList(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.run(t, w.args(), "", 0).Err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.records(t, w.u, listCol)); n != 3 {
		t.Fatalf("%d list records from 3 concurrent syncs, want 3 (2 albums + liked)", n)
	}
	if n := len(e.records(t, w.u, profileCol)); n != 1 {
		t.Fatalf("%d profiles, want 1", n)
	}
	if got := e.listItems(t, w.u, LikedListRecordKey()); got != atJSON(t, items(w.t2, w.t3, w.t1)) {
		t.Fatalf("liked list = %s", got)
	}
}

// The order on the PDS (the user reordered the album elsewhere) is kept;
// new tracks are appended to an album, new likes go in front of the liked
// list, removed ones leave.
func TestATProtoSyncKeepsTheOrderOnThePDS(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	ctx := context.Background()
	e.mustRun(t, w.args())

	// Reordered on the PDS by another client.
	a1key := AlbumListRecordKey(w.a1)
	rec := e.record(t, w.u, listCol, a1key)
	f := rec.Fields(t)
	f["items"] = items(w.t2, w.t1)
	pdstest.PutRecord(t, e.pdsURL, w.u.Account, listCol, a1key, f)
	likedKey := LikedListRecordKey()
	lf := e.record(t, w.u, listCol, likedKey).Fields(t)
	lf["items"] = items(w.t1, w.t2, w.t3)
	pdstest.PutRecord(t, e.pdsURL, w.u.Account, listCol, likedKey, lf)

	// New in the database: a track on album 1, a like of t4, an unlike of t3.
	t5 := e.track(t, w.u, "Five")
	if err := e.st.SetAlbumTracks(ctx, w.a1.ID, []int64{w.t1.ID, w.t2.ID, t5.ID}); err != nil {
		t.Fatal(err)
	}
	e.like(t, w.u, w.t4, time.Now())
	likes, _ := e.st.ListUserLikes(ctx, w.u.DID)
	for _, l := range likes {
		if l.TrackID == w.t3.ID {
			if err := e.st.DeleteLike(ctx, l.ID); err != nil {
				t.Fatal(err)
			}
		}
	}

	e.mustRun(t, w.args())
	if got := e.listItems(t, w.u, a1key); got != atJSON(t, items(w.t2, w.t1, t5)) {
		t.Fatalf("album list = %s, want the PDS order with the new track appended", got)
	}
	nf := e.record(t, w.u, listCol, a1key).Fields(t)
	if nf["createdAt"] != f["createdAt"] || nf["updatedAt"] == nil {
		t.Fatalf("album list timestamps = %v / %v", nf["createdAt"], nf["updatedAt"])
	}
	if got := e.listItems(t, w.u, likedKey); got != atJSON(t, items(w.t4, w.t1, w.t2)) {
		t.Fatalf("liked list = %s, want the new like first, then the PDS order without the unliked track", got)
	}
	if n := len(e.records(t, w.u, listCol)); n != 3 {
		t.Fatalf("%d lists, want 3", n)
	}
}

func TestATProtoSyncKeepsAnExistingProfile(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	before := pdstest.PutRecord(t, e.pdsURL, w.u.Account, profileCol, "self",
		map[string]any{"$type": profileCol, "bio": "made elsewhere", "createdAt": "2020-02-02T00:00:00.000Z"})
	if out := e.mustRun(t, w.args()); out["profile"] != "unchanged" {
		t.Fatalf("result = %v", out)
	}
	after := e.record(t, w.u, profileCol, "self")
	if after.CID != before.CID {
		t.Fatalf("profile rewritten: %s", after.Value)
	}
}

func TestATProtoSyncOfAListenerWritesNoProfile(t *testing.T) {
	e := newATEnv(t)
	artist, fan, tr := e.likeSetup(t)
	_ = artist
	e.like(t, fan, tr, time.Now())
	out := e.mustRun(t, tasks.ATProtoSyncArgs{SessionID: fan.SessionID, DID: fan.DID})
	if out["profile"] != "not-an-artist" || out["liked_items"] != float64(1) {
		t.Fatalf("result = %v", out)
	}
	if n := len(e.records(t, fan, profileCol)); n != 0 {
		t.Fatalf("%d profiles for a listener", n)
	}
}

// A sync that fails half-way (the PDS 502s on its third write) and is
// retried ends with exactly one record per list.
func TestATProtoSyncRetryAfterAFailureMidTaskMakesNoDuplicate(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	e.proxy.Add(pdstest.FailAfter("com.atproto.repo.putRecord", 2, 1, pdstest.ServerError()))
	r := e.run(t, w.args(), "sync-1", 0)
	if r.Err == nil || job.IsPermanent(r.Err) {
		t.Fatalf("first attempt err = %v, want a retryable failure", r.Err)
	}
	if n := len(e.records(t, w.u, listCol)) + len(e.records(t, w.u, profileCol)); n != 2 {
		t.Fatalf("%d records after the failed attempt, want 2 (profile + first album)", n)
	}
	if r := e.run(t, w.args(), "sync-1", 1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := len(e.records(t, w.u, listCol)); n != 3 {
		t.Fatalf("%d lists after the retry, want 3", n)
	}
	if n := len(e.records(t, w.u, profileCol)); n != 1 {
		t.Fatalf("%d profiles after the retry, want 1", n)
	}
}

func TestATProtoSyncRefusesAnotherUsersSession(t *testing.T) {
	e := newATEnv(t)
	a, b := e.newUser(t), e.newUser(t)
	r := e.run(t, tasks.ATProtoSyncArgs{SessionID: a.SessionID, DID: b.DID}, "", 0)
	if !job.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "acts as "+a.DID) {
		t.Fatalf("err = %v", r.Err)
	}
}

func TestATProtoSyncExpiredSessionIsArchivedWithTheReason(t *testing.T) {
	e := newATEnv(t)
	w := e.syncWorld(t)
	ctx := context.Background()
	s, _ := e.st.GetSession(ctx, w.u.SessionID)
	pdstest.RevokeSession(t, e.pdsURL, s.Tokens.RefreshJWT)
	if _, err := e.st.UpdateSessionTokens(ctx, s.ID, s.Tokens.RefreshJWT, s.Tokens, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, w.args(), "", 0)
	if !job.IsPermanent(r.Err) || !errorsIsExpired(r.Err) || !strings.Contains(r.Err.Error(), "session expired") {
		t.Fatalf("err = %v, want a permanent session expired", r.Err)
	}
	if e.pds.Stats().SessionsExpired != 1 {
		t.Fatalf("SessionsExpired = %d", e.pds.Stats().SessionsExpired)
	}
	if n := len(e.records(t, w.u, listCol)); n != 0 {
		t.Fatalf("%d lists written with an expired session", n)
	}
}

func TestATProtoLikedListRecordKeyIsATID(t *testing.T) {
	if _, ok := pds.TIDClock(LikedListRecordKey()); !ok {
		t.Fatalf("%q is not a TID", LikedListRecordKey())
	}
	if LikedListRecordKey() != "3khuwc44c2222" { // TID of 2024-01-01T00:00:00Z, clock 0
		// Changing it would give every user a second liked list.
		t.Fatalf("LikedListRecordKey changed to %q", LikedListRecordKey())
	}
}
