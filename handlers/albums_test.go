package handlers

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const listCol = "fm.plyr.list"

func (e *atEnv) album(t *testing.T, u atUser, title string, tracks ...store.Track) store.Album {
	t.Helper()
	ids := make([]int64, len(tracks))
	for i, tr := range tracks {
		ids[i] = tr.ID
	}
	a, err := e.st.CreateAlbum(context.Background(), store.Album{ArtistDID: u.DID, Title: title, TrackIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if a, err = e.st.GetAlbum(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	return a
}

func items(tracks ...store.Track) []any {
	out := make([]any, len(tracks))
	for i, tr := range tracks {
		out[i] = map[string]any{"subject": map[string]any{"uri": tr.RecordURI, "cid": tr.RecordCID}}
	}
	return out
}

func TestAlbumListSyncCreatesThenUpdatesInPlace(t *testing.T) {
	e := newATEnv(t)
	artist := e.newUser(t)
	e.artist(t, artist)
	t1, t2, t3 := e.track(t, artist, "One"), e.track(t, artist, "Two"), e.track(t, artist, "Three")
	al := e.album(t, artist, "Debut", t2, t1, t3)
	args := tasks.AlbumListSyncArgs{SessionID: artist.SessionID, AlbumID: al.ID}

	out := e.mustRun(t, args)
	rkey := AlbumListRecordKey(al)
	uri := "at://" + artist.DID + "/" + listCol + "/" + rkey
	if out["uri"] != uri || out["written"] != true {
		t.Fatalf("result = %v, want %s written", out, uri)
	}
	rec := e.record(t, artist, listCol, rkey)
	f := rec.Fields(t)
	want := map[string]any{"$type": listCol, "name": "Debut", "listType": "album", "items": items(t2, t1, t3), "createdAt": f["createdAt"]}
	if atJSON(t, f) != atJSON(t, want) {
		t.Fatalf("album list\n got %s\nwant %s", atJSON(t, f), atJSON(t, want))
	}
	row, _ := e.st.GetAlbum(context.Background(), al.ID)
	if row.ListURI != uri || row.ListCID != rec.CID {
		t.Fatalf("album row list = %s %s, want %s %s", row.ListURI, row.ListCID, uri, rec.CID)
	}

	// Nothing changed: nothing written.
	puts := e.proxy.Count("com.atproto.repo.putRecord")
	if out := e.mustRun(t, args); out["written"] != false || out["cid"] != rec.CID {
		t.Fatalf("unchanged sync = %v", out)
	}
	if e.proxy.Count("com.atproto.repo.putRecord") != puts {
		t.Fatal("an unchanged album was rewritten")
	}

	// Reordered: the same record, in the new order, createdAt kept.
	if err := e.st.SetAlbumTracks(context.Background(), al.ID, []int64{t3.ID, t2.ID, t1.ID}); err != nil {
		t.Fatal(err)
	}
	if out := e.mustRun(t, args); out["uri"] != uri || out["written"] != true {
		t.Fatalf("reordered sync = %v", out)
	}
	f2 := e.record(t, artist, listCol, rkey).Fields(t)
	if atJSON(t, f2["items"]) != atJSON(t, items(t3, t2, t1)) || f2["createdAt"] != f["createdAt"] || f2["updatedAt"] == nil {
		t.Fatalf("reordered list = %s", atJSON(t, f2))
	}
	if n := len(e.records(t, artist, listCol)); n != 1 {
		t.Fatalf("%d list records, want 1", n)
	}
}

func TestAlbumListSyncOnlyByTheOwner(t *testing.T) {
	e := newATEnv(t)
	artist, other := e.newUser(t), e.newUser(t)
	e.artist(t, artist)
	al := e.album(t, artist, "Mine", e.track(t, artist, "One"))
	r := e.run(t, tasks.AlbumListSyncArgs{SessionID: other.SessionID, AlbumID: al.ID}, "", 0)
	if !job.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "only its owner") {
		t.Fatalf("err = %v", r.Err)
	}
	if n := len(e.records(t, other, listCol)) + len(e.records(t, artist, listCol)); n != 0 {
		t.Fatalf("%d lists written by a non-owner", n)
	}
}

func TestAlbumListSyncConcurrentRunsMakeOneRecord(t *testing.T) {
	e := newATEnv(t)
	artist := e.newUser(t)
	e.artist(t, artist)
	al := e.album(t, artist, "Race", e.track(t, artist, "One"), e.track(t, artist, "Two"))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.run(t, tasks.AlbumListSyncArgs{SessionID: artist.SessionID, AlbumID: al.ID}, "", 0).Err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.records(t, artist, listCol)); n != 1 {
		t.Fatalf("%d list records from 4 concurrent syncs, want 1", n)
	}
}

func TestAlbumListSyncRetriesAServerError(t *testing.T) {
	e := newATEnv(t)
	artist := e.newUser(t)
	e.artist(t, artist)
	al := e.album(t, artist, "Flaky", e.track(t, artist, "One"))
	e.proxy.Add(pdstest.FailTimes("com.atproto.repo.putRecord", 1, pdstest.ServerError()))
	args := tasks.AlbumListSyncArgs{SessionID: artist.SessionID, AlbumID: al.ID}
	r := e.run(t, args, "flaky", 0)
	if r.Err == nil || job.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "HTTP 502") {
		t.Fatalf("first attempt err = %v, want a retryable 502", r.Err)
	}
	if r := e.run(t, args, "flaky", 1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := len(e.records(t, artist, listCol)); n != 1 {
		t.Fatalf("%d list records, want 1", n)
	}
}

func TestAlbumKeepOrder(t *testing.T) {
	ref := func(s string) pds.ListItem {
		return pds.ListItem{Subject: pds.StrongRef{URI: "at://d/c/" + s, CID: "cid-" + s}}
	}
	list := func(ss ...string) []pds.ListItem {
		out := []pds.ListItem{}
		for _, s := range ss {
			out = append(out, ref(s))
		}
		return out
	}
	cases := []struct {
		name    string
		old     []pds.ListItem // nil: no list yet
		want    []pds.ListItem
		prepend bool
		out     []pds.ListItem
	}{
		{"no list yet", nil, list("a", "b"), false, list("a", "b")},
		{"existing order kept", list("b", "a"), list("a", "b"), false, list("b", "a")},
		{"new items appended in want's order", list("b", "a"), list("a", "c", "b", "d"), false, list("b", "a", "c", "d")},
		{"new items prepended (newest first)", list("b", "a"), list("d", "c", "a", "b"), true, list("d", "c", "b", "a")},
		{"removed items leave", list("c", "b", "a"), list("a", "c"), false, list("c", "a")},
		{"duplicates on the PDS collapse", list("a", "a", "b"), list("a", "b"), false, list("a", "b")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var old *pds.ListRecord
			if c.old != nil {
				old = &pds.ListRecord{Items: c.old}
			}
			if got := keepOrder(old, c.want, c.prepend); atJSON(t, got) != atJSON(t, c.out) {
				t.Fatalf("keepOrder = %s, want %s", atJSON(t, got), atJSON(t, c.out))
			}
		})
	}
	// A changed CID is taken from the database.
	old := &pds.ListRecord{Items: []pds.ListItem{{Subject: pds.StrongRef{URI: "at://d/c/a", CID: "old"}}}}
	if got := keepOrder(old, list("a"), false); got[0].Subject.CID != "cid-a" {
		t.Fatalf("CID = %s, want cid-a", got[0].Subject.CID)
	}
}
