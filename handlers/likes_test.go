package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

const likeCol = "fm.plyr.like"

func errorsIsExpired(err error) bool { return errors.Is(err, job.ErrSessionExpired) }

// likeSetup is an artist with a published track and a fan who likes it.
func (e *atEnv) likeSetup(t *testing.T) (artist, fan atUser, tr store.Track) {
	t.Helper()
	artist, fan = e.newUser(t), e.newUser(t)
	e.artist(t, artist)
	tr = e.track(t, artist, "Liked Song")
	return artist, fan, tr
}

func (e *atEnv) like(t *testing.T, fan atUser, tr store.Track, at time.Time) store.Like {
	t.Helper()
	l, err := e.st.CreateLike(context.Background(), store.Like{TrackID: tr.ID, UserDID: fan.DID, CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if l, err = e.st.GetLike(context.Background(), l.ID); err != nil {
		t.Fatal(err)
	}
	return l
}

func likeArgs(fan atUser, l store.Like, tr store.Track) tasks.LikeArgs {
	return tasks.LikeArgs{SessionID: fan.SessionID, LikeID: l.ID, SubjectURI: tr.RecordURI, SubjectCID: tr.RecordCID}
}

func TestLikeWritesOneRecordAndStoresItsURI(t *testing.T) {
	e := newATEnv(t)
	_, fan, tr := e.likeSetup(t)
	l := e.like(t, fan, tr, time.Now().Add(-time.Hour))

	out := e.mustRun(t, likeArgs(fan, l, tr))
	wantURI := "at://" + fan.DID + "/" + likeCol + "/" + LikeRecordKey(l)
	if out["uri"] != wantURI {
		t.Fatalf("uri = %v, want %s", out["uri"], wantURI)
	}
	want := map[string]any{"$type": likeCol, "subject": map[string]any{"uri": tr.RecordURI, "cid": tr.RecordCID}, "createdAt": l.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z")}
	rec := e.record(t, fan, likeCol, LikeRecordKey(l))
	if got := atJSON(t, rec.Fields(t)); got != atJSON(t, want) {
		t.Fatalf("like record\n got %s\nwant %s", got, atJSON(t, want))
	}
	if row, _ := e.st.GetLike(context.Background(), l.ID); row.RecordURI != wantURI {
		t.Fatalf("like row record URI = %q, want %s", row.RecordURI, wantURI)
	}
	// Retried (and re-sent) tasks rewrite the same record.
	for attempt := 1; attempt <= 2; attempt++ {
		if r := e.run(t, likeArgs(fan, l, tr), "", attempt); r.Err != nil || r.Out["cid"] != rec.CID {
			t.Fatalf("attempt %d: %v %v", attempt, r.Err, r.Out)
		}
	}
	if n := len(e.records(t, fan, likeCol)); n != 1 {
		t.Fatalf("%d like records, want 1", n)
	}
}

// The user unliked before the like task ran: the unlike (of the URI the
// like would get) and the like both succeed and nothing is on the PDS.
func TestLikeUnlikedBeforeTheTaskRanLeavesNothing(t *testing.T) {
	e := newATEnv(t)
	_, fan, tr := e.likeSetup(t)
	l := e.like(t, fan, tr, time.Now())
	uri := "at://" + fan.DID + "/" + likeCol + "/" + LikeRecordKey(l)
	if err := e.st.DeleteLike(context.Background(), l.ID); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, tasks.UnlikeArgs{SessionID: fan.SessionID, LikeURI: uri})
	out := e.mustRun(t, likeArgs(fan, l, tr))
	if out["skipped"] != "like was removed" {
		t.Fatalf("result = %v", out)
	}
	if n := e.proxy.Count("com.atproto.repo.putRecord"); n != 0 {
		t.Fatalf("%d writes for a removed like", n)
	}
	if n := len(e.records(t, fan, likeCol)); n != 0 {
		t.Fatalf("%d like records left, want 0", n)
	}
}

// A like task that wrote its record, then was retried after the user
// unliked (the ack was lost): the retry deletes the orphan, and leaves the
// record of the user's later re-like alone.
func TestLikeRetryAfterUnlikeRemovesTheOrphan(t *testing.T) {
	e := newATEnv(t)
	_, fan, tr := e.likeSetup(t)
	first := e.like(t, fan, tr, time.Now().Add(-time.Minute))
	e.mustRun(t, likeArgs(fan, first, tr))
	if err := e.st.DeleteLike(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	relike := e.like(t, fan, tr, time.Now())
	e.mustRun(t, likeArgs(fan, relike, tr))
	if n := len(e.records(t, fan, likeCol)); n != 2 {
		t.Fatalf("%d like records before the retry, want 2", n)
	}

	r := e.run(t, likeArgs(fan, first, tr), "", 1)
	if r.Err != nil || r.Out["deleted_records"] != float64(1) {
		t.Fatalf("retry = %v %v, want 1 record deleted", r.Err, r.Out)
	}
	recs := e.records(t, fan, likeCol)
	if len(recs) != 1 || recs[0].URI != "at://"+fan.DID+"/"+likeCol+"/"+LikeRecordKey(relike) {
		t.Fatalf("records left = %+v, want only the re-like's", recs)
	}
}

func TestLikeUnlike(t *testing.T) {
	e := newATEnv(t)
	artist, fan, tr := e.likeSetup(t)
	l := e.like(t, fan, tr, time.Now())
	uri := e.mustRun(t, likeArgs(fan, l, tr))["uri"].(string)

	e.mustRun(t, tasks.UnlikeArgs{SessionID: fan.SessionID, LikeURI: uri})
	if n := len(e.records(t, fan, likeCol)); n != 0 {
		t.Fatalf("%d like records after unlike", n)
	}
	// Unliking what is already gone is success.
	e.mustRun(t, tasks.UnlikeArgs{SessionID: fan.SessionID, LikeURI: uri})

	for name, c := range map[string]struct{ uri, want string }{
		"another user's like":  {"at://" + artist.DID + "/" + likeCol + "/3lenax2ss2222", "not the session's"},
		"not a like":           {"at://" + fan.DID + "/fm.plyr.comment/3lenax2ss2222", "want fm.plyr.like"},
		"another user's track": {tr.RecordURI, "not the session's"},
	} {
		r := e.run(t, tasks.UnlikeArgs{SessionID: fan.SessionID, LikeURI: c.uri}, "", 0)
		if !job.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), c.want) {
			t.Fatalf("%s: err = %v, want permanent %q", name, r.Err, c.want)
		}
	}
	if n := e.proxy.Count("com.atproto.repo.deleteRecord"); n != 2 {
		t.Fatalf("%d deletes sent, want 2 (the refused ones must not reach the PDS)", n)
	}
}

func TestLikeOfAnotherUsersRowIsPermanent(t *testing.T) {
	e := newATEnv(t)
	artist, fan, tr := e.likeSetup(t)
	l := e.like(t, fan, tr, time.Now())
	r := e.run(t, tasks.LikeArgs{SessionID: artist.SessionID, LikeID: l.ID, SubjectURI: tr.RecordURI, SubjectCID: tr.RecordCID}, "", 0)
	if !job.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "belongs to "+fan.DID) {
		t.Fatalf("err = %v", r.Err)
	}
}
