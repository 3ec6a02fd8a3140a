package faults

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/export/audiogen"
	"github.com/plyr-fm/plyrtasks/handlers"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/pds/pdstest"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// Collections plyrtasks writes by default.
const (
	likeCol    = "fm.plyr.like"
	commentCol = "fm.plyr.comment"
	listCol    = "fm.plyr.list"
	profileCol = "fm.plyr.actor.profile"
	trackCol   = "fm.plyr.track"
	playCol    = "fm.teal.feed.play"
	statusCol  = "fm.teal.actor.status"
)

// kindCase is one task of one registered type, set up in a world: what to
// enqueue, where it waits while its external side is held, and how to check
// that its side effects happened exactly once.
type kindCase struct {
	kind string
	// pds: the type acts on a PDS (skipped without one).
	pds  bool
	args tasks.Args
	opts []client.Option
	// internal types are enqueued by the workers' periodic loop, not by
	// producers: the test enqueues them as that loop does.
	internal bool
	// proxy and gate are where the task waits while held.
	proxy *holdProxy
	gate  string
	// verify checks the end state: as if the task ran once.
	verify func(t *testing.T)
}

// retries is the type's declared retry count.
func (c *kindCase) retries() int {
	def, _ := tasks.All().Lookup(c.kind)
	return def.Opts.Retries()
}

// enqueue puts the case's task on its queue.
func (c *kindCase) enqueue(t *testing.T, w *world) ref {
	t.Helper()
	if !c.internal {
		return w.enqueue(t, c.args, c.opts...)
	}
	def, _ := tasks.All().Lookup(c.kind)
	payload, err := tasks.Encode(c.args)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s:%s:test-%s", w.ns, c.kind, randomHex(4))
	q := w.queue(def.Opts.Queue)
	_, err = asynq.NewClientFromRedisClient(w.rdb).Enqueue(asynq.NewTask(c.kind, payload), asynq.Queue(q),
		asynq.TaskID(id), asynq.MaxRetry(def.Opts.Retries()), asynq.Timeout(def.Opts.Timeout), asynq.Retention(time.Hour))
	if err != nil {
		t.Fatalf("enqueue %s: %v", c.kind, err)
	}
	return ref{Kind: c.kind, Queue: q, ID: id}
}

// pdsWorld is the real PDS behind a hold proxy (gate "write": putRecord,
// deleteRecord, createRecord, applyWrites); sessions are stored with the
// proxy's URL as their PDS, so every task's requests pass through it.
type pdsWorld struct {
	url    string
	proxy  *holdProxy
	client *pds.Client
	w      *world
	n      atomic.Int64
}

// pdsTestURL finds the test PDS as pdstest.URL does, but reports its
// absence instead of skipping: scenarios run their other task types
// without it. With PLYRTASKS_REQUIRE_PDS=1 a missing PDS fails the test.
func pdsTestURL(t *testing.T) (string, bool) {
	t.Helper()
	u := os.Getenv("PLYRTASKS_TEST_PDS_URL")
	if u == "" {
		u = pdstest.DefaultURL
	}
	u = strings.TrimRight(u, "/")
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u + "/xrpc/_health")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return u, true
		}
		err = fmt.Errorf("health check: HTTP %d", resp.StatusCode)
	}
	msg := fmt.Sprintf("\n"+
		"################################################################\n"+
		"## NO PDS at %s (%v)\n"+
		"## The ATProto task types (pds:*, teal:scrobble, album:list-sync,\n"+
		"## atproto:sync) are NOT tested by this scenario. Start one with\n"+
		"##     ../shared/pds/start.sh\n"+
		"################################################################", u, err)
	if os.Getenv("PLYRTASKS_REQUIRE_PDS") == "1" {
		t.Fatal(msg + "\nPLYRTASKS_REQUIRE_PDS=1: failing instead of skipping")
	}
	t.Log(msg)
	return "", false
}

func newPDSWorld(t *testing.T, w *world) (*pdsWorld, bool) {
	t.Helper()
	u, ok := pdsTestURL(t)
	if !ok {
		return nil, false
	}
	p := &pdsWorld{url: u, w: w}
	p.proxy = newHoldProxy(t, u, func(r *http.Request, _ []byte) string {
		switch strings.TrimPrefix(r.URL.Path, "/xrpc/") {
		case "com.atproto.repo.putRecord", "com.atproto.repo.deleteRecord",
			"com.atproto.repo.createRecord", "com.atproto.repo.applyWrites":
			return "write"
		}
		return ""
	})
	c, err := pds.New(pds.Options{Store: w.st, Redis: w.rdb, Namespace: w.ns})
	if err != nil {
		t.Fatal(err)
	}
	p.client = c
	return p, true
}

// pdsUser is an account on the PDS with a stored session through the proxy.
type pdsUser struct {
	pdstest.Account
	SessionID string
}

func (p *pdsWorld) user(t *testing.T) pdsUser {
	t.Helper()
	a := pdstest.NewAccount(t, p.url)
	s, err := p.client.Login(context.Background(), p.proxy.URL, a.Handle, a.Password)
	if err != nil {
		t.Fatal(err)
	}
	return pdsUser{Account: a, SessionID: s.ID}
}

// artist makes u an artist with a published track (a real track record).
func (p *pdsWorld) artist(t *testing.T, u pdsUser) {
	t.Helper()
	if err := p.w.st.UpsertArtist(context.Background(), store.Artist{DID: u.DID, Handle: u.Handle, PDSURL: p.proxy.URL}); err != nil {
		t.Fatal(err)
	}
}

func (p *pdsWorld) track(t *testing.T, u pdsUser, title string) store.Track {
	t.Helper()
	created := time.Now().UTC()
	rkey := pds.TID(created, p.n.Add(1))
	rec := pdstest.PutRecord(t, p.url, u.Account, trackCol, rkey, map[string]any{
		"$type": trackCol, "title": title, "artist": u.Handle, "createdAt": pds.Datetime(created)})
	tr, err := p.w.st.CreateTrack(context.Background(), store.Track{ArtistDID: u.DID, Title: title, RecordURI: rec.URI, RecordCID: rec.CID, CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (p *pdsWorld) records(t *testing.T, u pdsUser, col string) []pdstest.Record {
	t.Helper()
	return pdstest.ListRecords(t, p.url, u.DID, col)
}

// expectRecords fails unless u has exactly n records of col, and returns them.
func (p *pdsWorld) expectRecords(t *testing.T, kind string, u pdsUser, col string, n int) []pdstest.Record {
	t.Helper()
	recs := p.records(t, u, col)
	if len(recs) != n {
		var uris []string
		for _, r := range recs {
			uris = append(uris, r.URI)
		}
		t.Errorf("%s: %d %s records %v, want exactly %d", kind, len(recs), col, uris, n)
	}
	return recs
}

// kindCases sets up one task of every registered type in w (the ATProto
// ones only with p) and returns them with the kinds it could not cover.
func kindCases(t *testing.T, w *world, p *pdsWorld) (cases []*kindCase, skipped []string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// copyright:scan: a flagged scan, reported to the labeler once.
	scanTr, scanURL := w.scanTrack(t, "k-scan-"+randomHex(3), "dominant")
	cases = append(cases, &kindCase{
		kind: "copyright:scan", args: tasks.CopyrightScanArgs{TrackID: scanTr.ID, AudioURL: scanURL},
		proxy: w.modProxy, gate: "scan",
		verify: func(t *testing.T) {
			sc, err := w.st.GetScan(ctx, scanTr.ID)
			if err != nil || sc.Status != store.ScanFlagged {
				t.Errorf("copyright:scan: scan %+v, %v; want flagged", sc, err)
			}
			if n := w.eventsFor(scanTr.RecordURI); n != 1 {
				t.Errorf("copyright:scan: %d labeler reports, want exactly 1", n)
			}
		},
	})

	// copyright:sync-resolutions: a reported flag the labeler negated is
	// cleared.
	syncTr, _ := w.scanTrack(t, "k-sync-"+randomHex(3), "")
	scannedAt := time.Now().UTC().Truncate(time.Millisecond)
	must(w.st.SaveScan(ctx, store.CopyrightScan{TrackID: syncTr.ID, Status: store.ScanFlagged, Flagged: true,
		DominantMatchPct: 90, Matches: []byte("[]"), Raw: []byte("{}"), ScannedAt: scannedAt}))
	if ok, err := w.st.MarkScanReported(ctx, syncTr.ID, scannedAt, time.Now()); err != nil || !ok {
		t.Fatalf("mark reported: %v %v", ok, err)
	}
	w.mod.Negate(syncTr.RecordURI)
	cases = append(cases, &kindCase{
		kind: "copyright:sync-resolutions", args: tasks.CopyrightSyncResolutionsArgs{}, internal: true,
		proxy: w.modProxy, gate: "negated",
		verify: func(t *testing.T) {
			sc, err := w.st.GetScan(ctx, syncTr.ID)
			if err != nil || sc.Flagged || sc.ResolvedAt.IsZero() {
				t.Errorf("copyright:sync-resolutions: scan %+v, %v; want the flag cleared", sc, err)
			}
		},
	})

	// export:media: two tracks in S3 zipped into one object.
	expDID := "did:plc:faultsexport" + randomHex(4)
	must(w.st.UpsertArtist(ctx, store.Artist{DID: expDID, Handle: "exporter.test"}))
	for i := range 2 {
		key := fmt.Sprintf("audio/%s-%d.wav", expDID[8:], i)
		tone := audiogen.Tone{Freq: 220 * float64(i+1)}.ForSize(1 << 20)
		if _, err := storage.Put(ctx, w.s3.direct, key, tone.Reader(), storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := w.st.CreateTrack(ctx, store.Track{ArtistDID: expDID, Title: fmt.Sprintf("Song %d", i), FileKey: key, FileType: "wav"})
		must(err)
	}
	expID := "exp" + randomHex(6)
	cases = append(cases, &kindCase{
		kind: "export:media", args: tasks.MediaExportArgs{ExportID: expID, ArtistDID: expDID},
		// As the export service enqueues: the export ID is the task ID.
		opts:  []client.Option{client.TaskID(expID), client.UniqueFor(0)},
		proxy: w.s3.proxy, gate: "part",
		verify: func(t *testing.T) {
			j, err := w.st.GetJob(ctx, expID)
			if err != nil || j.Status != store.JobDone {
				t.Errorf("export:media: job %+v, %v; want done", j, err)
			}
			keys := w.s3.objects(t, "exports/"+expID+"/")
			if len(keys) != 1 {
				t.Fatalf("export:media: objects %v under exports/%s/, want exactly 1", keys, expID)
			}
			if n, err := w.s3.direct.AbortUploads(ctx, "exports/"); err != nil || n != 0 {
				t.Errorf("export:media: %d unfinished uploads left behind (%v), want 0", n, err)
			}
			b := w.s3.readAll(t, keys[0])
			zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil || len(zr.File) != 2 {
				t.Errorf("export:media: zip of %d bytes: %v, want 2 entries", len(b), err)
			}
		},
	})

	if p == nil {
		for _, k := range tasks.All().Kinds() {
			if !slices.ContainsFunc(cases, func(c *kindCase) bool { return c.kind == k }) {
				skipped = append(skipped, k)
			}
		}
		return cases, skipped
	}

	// --- the ATProto family, each on its own accounts ---------------------
	artist := p.user(t)
	p.artist(t, artist)
	song := p.track(t, artist, "Liked Song")

	// pds:like: one like record, its URI on the row.
	fan1 := p.user(t)
	like, err := w.st.CreateLike(ctx, store.Like{TrackID: song.ID, UserDID: fan1.DID, CreatedAt: time.Now().Add(-time.Minute)})
	must(err)
	like, err = w.st.GetLike(ctx, like.ID)
	must(err)
	cases = append(cases, &kindCase{
		kind: "pds:like", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.LikeArgs{SessionID: fan1.SessionID, LikeID: like.ID, SubjectURI: song.RecordURI, SubjectCID: song.RecordCID},
		verify: func(t *testing.T) {
			recs := p.expectRecords(t, "pds:like", fan1, likeCol, 1)
			want := "at://" + fan1.DID + "/" + likeCol + "/" + handlers.LikeRecordKey(like)
			row, _ := w.st.GetLike(ctx, like.ID)
			if len(recs) == 1 && (recs[0].URI != want || row.RecordURI != want) {
				t.Errorf("pds:like: record %s, row %q; want %s", recs[0].URI, row.RecordURI, want)
			}
		},
	})

	// pds:unlike: the like record is gone.
	fan2 := p.user(t)
	likeKey := pds.TID(time.Now().Add(-time.Hour), 7)
	liked := pdstest.PutRecord(t, p.url, fan2.Account, likeCol, likeKey, map[string]any{
		"$type": likeCol, "subject": map[string]any{"uri": song.RecordURI, "cid": song.RecordCID}, "createdAt": pds.Datetime(time.Now())})
	cases = append(cases, &kindCase{
		kind: "pds:unlike", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.UnlikeArgs{SessionID: fan2.SessionID, LikeURI: liked.URI},
		verify: func(t *testing.T) {
			p.expectRecords(t, "pds:unlike", fan2, likeCol, 0)
		},
	})

	comment := func(u pdsUser, text string) store.Comment {
		c, err := w.st.CreateComment(ctx, store.Comment{TrackID: song.ID, UserDID: u.DID, Text: text, TimestampMS: 5000, CreatedAt: time.Now().Add(-time.Minute)})
		must(err)
		c, err = w.st.GetComment(ctx, c.ID)
		must(err)
		return c
	}
	// existingComment also writes the comment's record, as create would have.
	existingComment := func(u pdsUser, text string) (store.Comment, pdstest.Record) {
		c := comment(u, text)
		rec := pdstest.PutRecord(t, p.url, u.Account, commentCol, handlers.CommentRecordKey(c), map[string]any{
			"$type": commentCol, "subject": map[string]any{"uri": song.RecordURI, "cid": song.RecordCID},
			"text": text, "timestampMs": 5000, "createdAt": pds.Datetime(c.CreatedAt)})
		must(w.st.SetCommentRecord(ctx, c.ID, rec.URI))
		return c, rec
	}

	// pds:comment-create: one record with the text, its URI on the row.
	fan3 := p.user(t)
	c3 := comment(fan3, "first!")
	cases = append(cases, &kindCase{
		kind: "pds:comment-create", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.CommentCreateArgs{SessionID: fan3.SessionID, CommentID: c3.ID, SubjectURI: song.RecordURI, SubjectCID: song.RecordCID, Text: c3.Text, TimestampMS: c3.TimestampMS},
		verify: func(t *testing.T) {
			recs := p.expectRecords(t, "pds:comment-create", fan3, commentCol, 1)
			row, _ := w.st.GetComment(ctx, c3.ID)
			if len(recs) == 1 && (recs[0].Fields(t)["text"] != "first!" || row.RecordURI != recs[0].URI) {
				t.Errorf("pds:comment-create: record %s %s, row %q", recs[0].URI, recs[0].Value, row.RecordURI)
			}
		},
	})

	// pds:comment-update: the one record has the new text and keeps its
	// createdAt.
	fan4 := p.user(t)
	c4, rec4 := existingComment(fan4, "before")
	cases = append(cases, &kindCase{
		kind: "pds:comment-update", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.CommentUpdateArgs{SessionID: fan4.SessionID, CommentID: c4.ID, CommentURI: rec4.URI, SubjectURI: song.RecordURI,
			SubjectCID: song.RecordCID, Text: "after", TimestampMS: 6000, CreatedAt: c4.CreatedAt},
		verify: func(t *testing.T) {
			recs := p.expectRecords(t, "pds:comment-update", fan4, commentCol, 1)
			if len(recs) == 1 {
				f := recs[0].Fields(t)
				if f["text"] != "after" || f["createdAt"] != pds.Datetime(c4.CreatedAt) || f["updatedAt"] == nil {
					t.Errorf("pds:comment-update: record %s", recs[0].Value)
				}
			}
		},
	})

	// pds:comment-delete: the record is gone.
	fan5 := p.user(t)
	_, rec5 := existingComment(fan5, "oops")
	cases = append(cases, &kindCase{
		kind: "pds:comment-delete", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.CommentDeleteArgs{SessionID: fan5.SessionID, CommentURI: rec5.URI},
		verify: func(t *testing.T) {
			p.expectRecords(t, "pds:comment-delete", fan5, commentCol, 0)
		},
	})

	// teal:scrobble without played_at: the play time is fixed in Redis on
	// the first attempt, so a rerun writes the same record: one play, one
	// status.
	fan6 := p.user(t)
	must(w.st.SavePreferences(ctx, store.Preferences{DID: fan6.DID, TealScrobbling: true}))
	cases = append(cases, &kindCase{
		kind: "teal:scrobble", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.TealScrobbleArgs{SessionID: fan6.SessionID, TrackID: song.ID, TrackTitle: song.Title, ArtistName: artist.Handle},
		verify: func(t *testing.T) {
			p.expectRecords(t, "teal:scrobble", fan6, playCol, 1)
			p.expectRecords(t, "teal:scrobble", fan6, statusCol, 1)
		},
	})

	// album:list-sync: one list with the album's two tracks, its URI on
	// the album.
	artist2 := p.user(t)
	p.artist(t, artist2)
	t21, t22 := p.track(t, artist2, "One"), p.track(t, artist2, "Two")
	al, err := w.st.CreateAlbum(ctx, store.Album{ArtistDID: artist2.DID, Title: "Debut", TrackIDs: []int64{t22.ID, t21.ID}})
	must(err)
	cases = append(cases, &kindCase{
		kind: "album:list-sync", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.AlbumListSyncArgs{SessionID: artist2.SessionID, AlbumID: al.ID},
		verify: func(t *testing.T) {
			recs := p.expectRecords(t, "album:list-sync", artist2, listCol, 1)
			row, _ := w.st.GetAlbum(ctx, al.ID)
			if len(recs) == 1 {
				items, _ := recs[0].Fields(t)["items"].([]any)
				if len(items) != 2 || row.ListURI != recs[0].URI {
					t.Errorf("album:list-sync: list %s, album row %q", recs[0].Value, row.ListURI)
				}
			}
		},
	})

	// atproto:sync: one profile, one album list and one liked list.
	artist3 := p.user(t)
	p.artist(t, artist3)
	t31 := p.track(t, artist3, "Solo")
	_, err = w.st.CreateAlbum(ctx, store.Album{ArtistDID: artist3.DID, Title: "EP", TrackIDs: []int64{t31.ID}})
	must(err)
	_, err = w.st.CreateLike(ctx, store.Like{TrackID: song.ID, UserDID: artist3.DID, CreatedAt: time.Now()})
	must(err)
	cases = append(cases, &kindCase{
		kind: "atproto:sync", pds: true, proxy: p.proxy, gate: "write",
		args: tasks.ATProtoSyncArgs{SessionID: artist3.SessionID, DID: artist3.DID},
		verify: func(t *testing.T) {
			p.expectRecords(t, "atproto:sync", artist3, profileCol, 1)
			p.expectRecords(t, "atproto:sync", artist3, listCol, 2)
			prefs, _ := w.st.GetPreferences(ctx, artist3.DID)
			if prefs.LikedListURI == "" || prefs.ProfileCID == "" {
				t.Errorf("atproto:sync: preferences %+v, want the liked list and profile recorded", prefs)
			}
		},
	})
	return cases, nil
}

// checkCoverage fails when a registered type has no case and was not
// skipped for a missing PDS: a new task type must join the fault suite.
func checkCoverage(t *testing.T, cases []*kindCase, skipped []string) {
	t.Helper()
	var got []string
	for _, c := range cases {
		got = append(got, c.kind)
	}
	got = append(got, skipped...)
	slices.Sort(got)
	if want := tasks.All().Kinds(); !slices.Equal(got, want) {
		t.Fatalf("the fault suite covers %v, but the registered types are %v: add a kindCase for the new type", got, want)
	}
	if len(skipped) > 0 {
		t.Logf("NOT covered without a PDS: %v", skipped)
	}
}
