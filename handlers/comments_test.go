package handlers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const commentCol = "fm.plyr.comment"

func (e *atEnv) comment(t *testing.T, u atUser, tr store.Track, text string) store.Comment {
	t.Helper()
	c, err := e.st.CreateComment(context.Background(), store.Comment{TrackID: tr.ID, UserDID: u.DID, Text: text, TimestampMS: 5000, CreatedAt: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = e.st.GetComment(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	return c
}

func commentCreate(u atUser, c store.Comment, tr store.Track, text string) tasks.CommentCreateArgs {
	return tasks.CommentCreateArgs{SessionID: u.SessionID, CommentID: c.ID, SubjectURI: tr.RecordURI, SubjectCID: tr.RecordCID, Text: text, TimestampMS: c.TimestampMS}
}

func TestCommentCreateUpdateDelete(t *testing.T) {
	e := newATEnv(t)
	_, fan, tr := e.likeSetup(t)
	c := e.comment(t, fan, tr, "great drop at 0:05")
	create := commentCreate(fan, c, tr, "great drop at 0:05")

	out := e.mustRun(t, create)
	rkey := CommentRecordKey(c)
	uri := "at://" + fan.DID + "/" + commentCol + "/" + rkey
	if out["uri"] != uri {
		t.Fatalf("uri = %v, want %s", out["uri"], uri)
	}
	createdAt := pds.Datetime(c.CreatedAt)
	want := map[string]any{"$type": commentCol, "subject": map[string]any{"uri": tr.RecordURI, "cid": tr.RecordCID},
		"text": "great drop at 0:05", "timestampMs": 5000, "createdAt": createdAt}
	if got := atJSON(t, e.record(t, fan, commentCol, rkey).Fields(t)); got != atJSON(t, want) {
		t.Fatalf("comment record\n got %s\nwant %s", got, atJSON(t, want))
	}
	if row, _ := e.st.GetComment(context.Background(), c.ID); row.RecordURI != uri {
		t.Fatalf("comment row URI = %q", row.RecordURI)
	}
	if r := e.run(t, create, "", 1); r.Err != nil || r.Out["uri"] != uri {
		t.Fatalf("retry: %v %v", r.Err, r.Out)
	}
	if n := len(e.records(t, fan, commentCol)); n != 1 {
		t.Fatalf("%d comment records after a retry, want 1", n)
	}

	// Update: new text and position, createdAt kept, updatedAt set.
	update := tasks.CommentUpdateArgs{SessionID: fan.SessionID, CommentID: c.ID, CommentURI: uri, SubjectURI: tr.RecordURI, SubjectCID: tr.RecordCID,
		Text: "edited", TimestampMS: 6000, CreatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}
	before := time.Now().Add(-time.Second)
	e.mustRun(t, update)
	f := e.record(t, fan, commentCol, rkey).Fields(t)
	if f["text"] != "edited" || f["timestampMs"] != float64(6000) || f["createdAt"] != createdAt {
		t.Fatalf("updated record = %v", f)
	}
	upd, err := pds.ParseDatetime(f["updatedAt"].(string))
	if err != nil || upd.Before(before) || upd.After(time.Now().Add(time.Second)) {
		t.Fatalf("updatedAt = %v (%v)", f["updatedAt"], err)
	}

	// A create retried after the update does not put the old text back.
	if r := e.run(t, create, "", 2); r.Err != nil {
		t.Fatal(r.Err)
	}
	if f := e.record(t, fan, commentCol, rkey).Fields(t); f["text"] != "edited" {
		t.Fatalf("late create reverted the text: %v", f["text"])
	}
	if n := len(e.records(t, fan, commentCol)); n != 1 {
		t.Fatalf("%d comment records, want 1", n)
	}

	del := tasks.CommentDeleteArgs{SessionID: fan.SessionID, CommentURI: uri}
	e.mustRun(t, del)
	e.mustRun(t, del) // already gone: success
	if n := len(e.records(t, fan, commentCol)); n != 0 {
		t.Fatalf("%d comment records after delete", n)
	}

	// An update that runs after the comment was deleted brings nothing back.
	if err := e.st.DeleteComment(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	if out := e.mustRun(t, update); out["skipped"] != "comment was removed" {
		t.Fatalf("late update result = %v", out)
	}
	if n := len(e.records(t, fan, commentCol)); n != 0 {
		t.Fatalf("a late update recreated the comment (%d records)", n)
	}
}

func TestCommentRemovedBeforeCreateLeavesNothing(t *testing.T) {
	e := newATEnv(t)
	_, fan, tr := e.likeSetup(t)
	gone := e.comment(t, fan, tr, "first")
	kept := e.comment(t, fan, tr, "second")
	e.mustRun(t, commentCreate(fan, gone, tr, "first")) // an attempt that wrote, then lost its ack
	e.mustRun(t, commentCreate(fan, kept, tr, "second"))
	if err := e.st.DeleteComment(context.Background(), gone.ID); err != nil {
		t.Fatal(err)
	}

	r := e.run(t, commentCreate(fan, gone, tr, "first"), "", 1)
	if r.Err != nil || r.Out["skipped"] != "comment was removed" || r.Out["deleted_records"] != float64(1) {
		t.Fatalf("retry = %v %v", r.Err, r.Out)
	}
	recs := e.records(t, fan, commentCol)
	if len(recs) != 1 || atRKey(t, recs[0].URI) != CommentRecordKey(kept) {
		t.Fatalf("records left = %+v, want only comment %d's", recs, kept.ID)
	}
}

func TestCommentOfAnotherRepoIsPermanent(t *testing.T) {
	e := newATEnv(t)
	artist, fan, tr := e.likeSetup(t)
	c := e.comment(t, fan, tr, "mine")
	cases := map[string]tasks.Args{
		"create for another user's row": commentCreate(artist, c, tr, "mine"),
		"delete in another repo":        tasks.CommentDeleteArgs{SessionID: fan.SessionID, CommentURI: "at://" + artist.DID + "/" + commentCol + "/3lenax2ss2222"},
		"update of a like":              tasks.CommentUpdateArgs{SessionID: fan.SessionID, CommentID: c.ID, CommentURI: "at://" + fan.DID + "/fm.plyr.like/3lenax2ss2222", SubjectURI: tr.RecordURI, SubjectCID: tr.RecordCID, Text: "x", CreatedAt: time.Now()},
	}
	for name, args := range cases {
		if r := e.run(t, args, "", 0); !job.IsPermanent(r.Err) {
			t.Fatalf("%s: err = %v, want permanent", name, r.Err)
		} else if strings.Contains(r.Err.Error(), "mine") {
			t.Fatalf("%s: the error carries comment text: %v", name, r.Err)
		}
	}
	if n := e.proxy.Count("com.atproto.repo.putRecord") + e.proxy.Count("com.atproto.repo.deleteRecord"); n != 0 {
		t.Fatalf("%d writes sent for refused tasks", n)
	}
}
