package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/store/storetest"
)

// backend is one database the conformance suite runs against. open gives a
// ready store; options gives Options for a fresh empty database, for tests
// that open it themselves (without a key, with another key).
type backend struct {
	name    string
	open    func(testing.TB) store.Store
	options func(testing.TB) store.Options
}

var backends = []backend{
	{"sqlite", storetest.SQLite, func(t testing.TB) store.Options {
		return store.Options{DataDir: t.TempDir()}
	}},
	{"postgres", storetest.Postgres, func(t testing.TB) store.Options {
		return store.Options{DatabaseURL: storetest.PostgresURL(t)}
	}},
}

// conformance is the one suite every backend must pass.
var conformance = []struct {
	name string
	run  func(t *testing.T, b backend)
}{
	{"Migrate", testMigrate},
	{"MigrateConcurrent", testMigrateConcurrent},
	{"Artists", testArtists},
	{"Tracks", testTracks},
	{"Albums", testAlbums},
	{"Likes", testLikes},
	{"Comments", testComments},
	{"Preferences", testPreferences},
	{"Sessions", testSessions},
	{"SessionCompareAndSwap", testSessionCAS},
	{"SessionEncryptionAtRest", testSessionAtRest},
	{"SessionsWithoutKey", testSessionsWithoutKey},
	{"Jobs", testJobs},
	{"CreateJobOnceConcurrent", testCreateJobOnceConcurrent},
	{"Scans", testScans},
	{"ConcurrentWriters", testConcurrentWriters},
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
		})
	}
}

// base is a fixed instant in a non-UTC zone with sub-millisecond digits:
// the store must return it in UTC, truncated to milliseconds.
var base = time.Date(2026, 3, 4, 5, 6, 7, 8_765_432, time.FixedZone("CET", 3600))

func at(d time.Duration) time.Time { return base.Add(d) }

// stored is t as the store returns it.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// notFound asserts err wraps ErrNotFound and its message names what.
func notFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound for %q, got %v", what, err)
	}
	if !strings.Contains(err.Error(), what) {
		t.Fatalf("error %q does not name %q", err, what)
	}
}

func errContains(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want error containing %q, got %v", want, err)
	}
}

func isUTC(t *testing.T, what string, ts time.Time) {
	t.Helper()
	if ts.Location() != time.UTC {
		t.Fatalf("%s is in %v, want UTC", what, ts.Location())
	}
}

const artistDID = "did:plc:artist1"

func seedArtist(t *testing.T, st store.Store) {
	t.Helper()
	must(t, st.UpsertArtist(context.Background(), store.Artist{DID: artistDID, Handle: "artist.test", CreatedAt: base}))
}

func seedTrack(t *testing.T, st store.Store, title string, created time.Time) store.Track {
	t.Helper()
	tr, err := st.CreateTrack(context.Background(), store.Track{ArtistDID: artistDID, Title: title, CreatedAt: created})
	must(t, err)
	return tr
}

func testMigrate(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t) // migrated once
	seedArtist(t, st)
	for i := range 2 {
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("migrate again (%d): %v", i+2, err)
		}
	}
	a, err := st.GetArtist(ctx, artistDID)
	must(t, err)
	equal(t, "artist after re-migrate", a.Handle, "artist.test")
	equal(t, "dialect", st.Dialect(), b.name)
	must(t, st.Ping(ctx))

	var applied int
	must(t, store.RawDB(st).QueryRowContext(ctx, `SELECT COUNT(*) FROM goose_db_version WHERE version_id = 1`).Scan(&applied))
	equal(t, "times version 1 recorded", applied, 1)
}

// testMigrateConcurrent starts three replicas on one fresh database at
// once; each migrates at start, and all must succeed.
func testMigrateConcurrent(t *testing.T, b backend) {
	ctx := context.Background()
	opts := b.options(t)
	const replicas = 3
	stores := make([]store.Store, replicas)
	for i := range stores {
		st, err := store.Open(ctx, opts)
		must(t, err)
		defer st.Close()
		stores[i] = st
	}
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() {
			if err := st.Migrate(ctx); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	var applied int
	must(t, store.RawDB(stores[0]).QueryRowContext(ctx, `SELECT COUNT(*) FROM goose_db_version WHERE version_id = 1`).Scan(&applied))
	equal(t, "times version 1 recorded", applied, 1)
}

func testArtists(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	_, err := st.GetArtist(ctx, "did:plc:nobody")
	notFound(t, err, "get artist did:plc:nobody")

	a := store.Artist{DID: "did:plc:a", Handle: "a.test", DisplayName: "A", PDSURL: "https://pds.a", CreatedAt: base}
	must(t, st.UpsertArtist(ctx, a))
	got, err := st.GetArtist(ctx, "did:plc:a")
	must(t, err)
	equal(t, "artist", got, store.Artist{DID: "did:plc:a", Handle: "a.test", DisplayName: "A", PDSURL: "https://pds.a", CreatedAt: stored(base)})
	isUTC(t, "artist CreatedAt", got.CreatedAt)

	// Upsert updates the profile fields and keeps the first CreatedAt.
	must(t, st.UpsertArtist(ctx, store.Artist{DID: "did:plc:a", Handle: "b.test", DisplayName: "B", PDSURL: "https://pds.b", CreatedAt: at(time.Hour)}))
	got, err = st.GetArtist(ctx, "did:plc:a")
	must(t, err)
	equal(t, "artist after upsert", got, store.Artist{DID: "did:plc:a", Handle: "b.test", DisplayName: "B", PDSURL: "https://pds.b", CreatedAt: stored(base)})

	errContains(t, st.UpsertArtist(ctx, store.Artist{}), "DID is required")
}

func testTracks(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	seedArtist(t, st)
	must(t, st.UpsertArtist(ctx, store.Artist{DID: "did:plc:other"}))

	in := store.Track{ID: 999, ArtistDID: artistDID, Title: "First", FileKey: "audio/abc.mp3", FileType: "mp3",
		OriginalKey: "originals/abc.flac", OriginalType: "flac", CreatedAt: at(time.Minute)}
	first, err := st.CreateTrack(ctx, in)
	must(t, err)
	if first.ID == 0 || first.ID == 999 {
		t.Fatalf("CreateTrack ID = %d, want a database-assigned ID", first.ID)
	}
	want := in
	want.ID, want.CreatedAt = first.ID, stored(in.CreatedAt)
	equal(t, "created track", first, want)
	got, err := st.GetTrack(ctx, first.ID)
	must(t, err)
	equal(t, "got track", got, want)

	// Creation order: by created_at, then ID for equal times; not by insert order.
	later := seedTrack(t, st, "Later", at(time.Hour))
	earlier := seedTrack(t, st, "Earlier", at(time.Second))
	tie := seedTrack(t, st, "Tie", at(time.Hour))
	_, err = st.CreateTrack(ctx, store.Track{ArtistDID: "did:plc:other", Title: "Someone else's", CreatedAt: at(0)})
	must(t, err)
	list, err := st.ListArtistTracks(ctx, artistDID)
	must(t, err)
	var titles []string
	for _, tr := range list {
		titles = append(titles, tr.Title)
	}
	equal(t, "creation order", titles, []string{"Earlier", "First", "Later", "Tie"})
	if later.ID >= tie.ID || earlier.ID <= later.ID {
		t.Fatalf("IDs not in insert order: later=%d earlier=%d tie=%d", later.ID, earlier.ID, tie.ID)
	}
	equal(t, "listed track", list[1], want)
	none, err := st.ListArtistTracks(ctx, "did:plc:nobody")
	must(t, err)
	equal(t, "no tracks", len(none), 0)

	must(t, st.SetTrackRecord(ctx, first.ID, "at://did:plc:artist1/fm.plyr.track/3k", "bafyrec"))
	got, err = st.GetTrack(ctx, first.ID)
	must(t, err)
	equal(t, "record", [2]string{got.RecordURI, got.RecordCID}, [2]string{"at://did:plc:artist1/fm.plyr.track/3k", "bafyrec"})

	_, err = st.GetTrack(ctx, 424242)
	notFound(t, err, "get track 424242")
	notFound(t, st.SetTrackRecord(ctx, 424242, "at://x", "c"), "set track 424242 record")

	// A track needs its artist.
	if _, err := st.CreateTrack(ctx, store.Track{ArtistDID: "did:plc:nobody", Title: "orphan"}); err == nil {
		t.Fatal("CreateTrack for a missing artist succeeded")
	}
	_, err = st.CreateTrack(ctx, store.Track{Title: "no artist"})
	errContains(t, err, "ArtistDID is required")
	// Zero CreatedAt means now.
	before := time.Now().Add(-time.Second)
	nowTrack := seedTrack(t, st, "Now", time.Time{})
	if nowTrack.CreatedAt.Before(before) || nowTrack.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("default CreatedAt %v is not now", nowTrack.CreatedAt)
	}
	isUTC(t, "default CreatedAt", nowTrack.CreatedAt)
}

func testAlbums(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	seedArtist(t, st)
	t1 := seedTrack(t, st, "1", at(1))
	t2 := seedTrack(t, st, "2", at(2))
	t3 := seedTrack(t, st, "3", at(3))

	in := store.Album{ArtistDID: artistDID, Title: "LP", TrackIDs: []int64{t3.ID, t1.ID}, CreatedAt: at(time.Hour)}
	a, err := st.CreateAlbum(ctx, in)
	must(t, err)
	want := store.Album{ID: a.ID, ArtistDID: artistDID, Title: "LP", TrackIDs: []int64{t3.ID, t1.ID}, CreatedAt: stored(at(time.Hour))}
	equal(t, "created album", a, want)
	got, err := st.GetAlbum(ctx, a.ID)
	must(t, err)
	equal(t, "got album", got, want)

	// SetAlbumTracks replaces the order (including shrinking and growing).
	must(t, st.SetAlbumTracks(ctx, a.ID, []int64{t2.ID, t3.ID, t1.ID}))
	got, err = st.GetAlbum(ctx, a.ID)
	must(t, err)
	equal(t, "reordered", got.TrackIDs, []int64{t2.ID, t3.ID, t1.ID})
	must(t, st.SetAlbumTracks(ctx, a.ID, []int64{t1.ID}))
	got, err = st.GetAlbum(ctx, a.ID)
	must(t, err)
	equal(t, "shrunk", got.TrackIDs, []int64{t1.ID})

	errContains(t, st.SetAlbumTracks(ctx, a.ID, []int64{t1.ID, t2.ID, t1.ID}), fmt.Sprintf("lists track %d twice", t1.ID))
	got, err = st.GetAlbum(ctx, a.ID)
	must(t, err)
	equal(t, "order after rejected duplicate", got.TrackIDs, []int64{t1.ID})
	// A missing track rolls the whole replacement back.
	if err := st.SetAlbumTracks(ctx, a.ID, []int64{t2.ID, 777777}); err == nil {
		t.Fatal("SetAlbumTracks with a missing track succeeded")
	}
	got, err = st.GetAlbum(ctx, a.ID)
	must(t, err)
	equal(t, "order after failed replacement", got.TrackIDs, []int64{t1.ID})

	must(t, st.SetAlbumList(ctx, a.ID, "at://did:plc:artist1/fm.plyr.list/lp", "bafylist"))
	empty, err := st.CreateAlbum(ctx, store.Album{ArtistDID: artistDID, Title: "EP", CreatedAt: at(time.Minute)})
	must(t, err)
	list, err := st.ListArtistAlbums(ctx, artistDID)
	must(t, err)
	equal(t, "albums in creation order", list, []store.Album{
		{ID: empty.ID, ArtistDID: artistDID, Title: "EP", CreatedAt: stored(at(time.Minute))},
		{ID: a.ID, ArtistDID: artistDID, Title: "LP", TrackIDs: []int64{t1.ID}, ListURI: "at://did:plc:artist1/fm.plyr.list/lp", ListCID: "bafylist", CreatedAt: stored(at(time.Hour))},
	})
	none, err := st.ListArtistAlbums(ctx, "did:plc:nobody")
	must(t, err)
	equal(t, "no albums", len(none), 0)

	_, err = st.GetAlbum(ctx, 5151)
	notFound(t, err, "get album 5151")
	notFound(t, st.SetAlbumTracks(ctx, 5151, []int64{t1.ID}), "set album 5151 tracks")
	notFound(t, st.SetAlbumList(ctx, 5151, "at://x", "c"), "set album 5151 list")
	_, err = st.CreateAlbum(ctx, store.Album{ArtistDID: artistDID, TrackIDs: []int64{t1.ID, t1.ID}})
	errContains(t, err, "twice")
}

func testLikes(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	seedArtist(t, st)
	tr := seedTrack(t, st, "song", base)
	const user = "did:plc:fan"

	old, err := st.CreateLike(ctx, store.Like{TrackID: tr.ID, UserDID: user, CreatedAt: at(time.Minute)})
	must(t, err)
	equal(t, "created like", old, store.Like{ID: old.ID, TrackID: tr.ID, UserDID: user, CreatedAt: stored(at(time.Minute))})
	newest, err := st.CreateLike(ctx, store.Like{TrackID: tr.ID, UserDID: user, RecordURI: "at://fan/like/1", CreatedAt: at(time.Hour)})
	must(t, err)
	middle, err := st.CreateLike(ctx, store.Like{TrackID: tr.ID, UserDID: user, CreatedAt: at(2 * time.Minute)})
	must(t, err)
	_, err = st.CreateLike(ctx, store.Like{TrackID: tr.ID, UserDID: "did:plc:other", CreatedAt: at(3 * time.Hour)})
	must(t, err)

	list, err := st.ListUserLikes(ctx, user)
	must(t, err)
	var ids []int64
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	equal(t, "likes newest first", ids, []int64{newest.ID, middle.ID, old.ID})
	equal(t, "listed like", list[0], store.Like{ID: newest.ID, TrackID: tr.ID, UserDID: user, RecordURI: "at://fan/like/1", CreatedAt: stored(at(time.Hour))})

	must(t, st.SetLikeRecord(ctx, old.ID, "at://fan/like/0"))
	got, err := st.GetLike(ctx, old.ID)
	must(t, err)
	equal(t, "like with record", got, store.Like{ID: old.ID, TrackID: tr.ID, UserDID: user, RecordURI: "at://fan/like/0", CreatedAt: stored(at(time.Minute))})

	must(t, st.DeleteLike(ctx, old.ID))
	_, err = st.GetLike(ctx, old.ID)
	notFound(t, err, fmt.Sprintf("get like %d", old.ID))
	notFound(t, st.DeleteLike(ctx, old.ID), fmt.Sprintf("delete like %d", old.ID))
	notFound(t, st.SetLikeRecord(ctx, old.ID, "at://x"), fmt.Sprintf("set like %d record", old.ID))
	list, err = st.ListUserLikes(ctx, user)
	must(t, err)
	equal(t, "likes after delete", len(list), 2)

	if _, err := st.CreateLike(ctx, store.Like{TrackID: 9898, UserDID: user}); err == nil {
		t.Fatal("CreateLike for a missing track succeeded")
	}
	_, err = st.CreateLike(ctx, store.Like{TrackID: tr.ID})
	errContains(t, err, "UserDID is required")
}

func testComments(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	seedArtist(t, st)
	tr := seedTrack(t, st, "song", base)

	c, err := st.CreateComment(ctx, store.Comment{TrackID: tr.ID, UserDID: "did:plc:fan", Text: "nice drop ✨", TimestampMS: 61_500, CreatedAt: at(time.Minute)})
	must(t, err)
	want := store.Comment{ID: c.ID, TrackID: tr.ID, UserDID: "did:plc:fan", Text: "nice drop ✨", TimestampMS: 61_500,
		CreatedAt: stored(at(time.Minute)), UpdatedAt: stored(at(time.Minute))}
	equal(t, "created comment", c, want)

	must(t, st.SetCommentRecord(ctx, c.ID, "at://fan/comment/1"))
	got, err := st.GetComment(ctx, c.ID)
	must(t, err)
	want.RecordURI = "at://fan/comment/1"
	equal(t, "comment with record", got, want)

	edited, err := st.CreateComment(ctx, store.Comment{TrackID: tr.ID, UserDID: "did:plc:fan", Text: "x", CreatedAt: at(0), UpdatedAt: at(time.Hour)})
	must(t, err)
	equal(t, "explicit UpdatedAt", edited.UpdatedAt, stored(at(time.Hour)))

	must(t, st.DeleteComment(ctx, c.ID))
	_, err = st.GetComment(ctx, c.ID)
	notFound(t, err, fmt.Sprintf("get comment %d", c.ID))
	notFound(t, st.DeleteComment(ctx, c.ID), fmt.Sprintf("delete comment %d", c.ID))
	notFound(t, st.SetCommentRecord(ctx, c.ID, "at://x"), fmt.Sprintf("set comment %d record", c.ID))
}

func testPreferences(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	got, err := st.GetPreferences(ctx, "did:plc:new")
	must(t, err)
	equal(t, "defaults", got, store.Preferences{DID: "did:plc:new"})

	p := store.Preferences{DID: "did:plc:u", LikedListURI: "at://u/fm.plyr.list/liked", LikedListCID: "bafyliked", TealScrobbling: true, ProfileCID: "bafyprof"}
	must(t, st.SavePreferences(ctx, p))
	got, err = st.GetPreferences(ctx, "did:plc:u")
	must(t, err)
	equal(t, "saved", got, p)

	p2 := store.Preferences{DID: "did:plc:u", LikedListURI: "at://u/fm.plyr.list/liked2"}
	must(t, st.SavePreferences(ctx, p2))
	got, err = st.GetPreferences(ctx, "did:plc:u")
	must(t, err)
	equal(t, "replaced (scrobbling off again)", got, p2)
	errContains(t, st.SavePreferences(ctx, store.Preferences{}), "DID is required")
}

func oauthSession(id string) store.Session {
	return store.Session{
		ID: id, DID: "did:plc:fan", Handle: "fan.test", PDSURL: "https://pds.fan", Kind: store.SessionOAuth,
		Tokens: store.SessionTokens{
			AccessJWT: "access-token-SECRET-" + id, RefreshJWT: "refresh-1-" + id,
			DPoPKey: `{"kty":"EC","d":"private"}`, DPoPNonce: "nonce1", AuthServer: "https://auth.fan",
			ClientID: "https://plyr.fm/client-metadata.json", TokenEndpoint: "https://auth.fan/token",
		},
		ExpiresAt: at(time.Hour),
	}
}

func testSessions(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	_, err := st.GetSession(ctx, "nope")
	notFound(t, err, "get session nope")
	notFound(t, st.DeleteSession(ctx, "nope"), "delete session nope")

	in := oauthSession("s1")
	in.CreatedAt = base
	before := time.Now().Add(-time.Second)
	must(t, st.SaveSession(ctx, in))
	got, err := st.GetSession(ctx, "s1")
	must(t, err)
	if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("UpdatedAt %v is not now", got.UpdatedAt)
	}
	want := in
	want.ExpiresAt, want.CreatedAt, want.UpdatedAt = stored(in.ExpiresAt), stored(base), got.UpdatedAt
	equal(t, "session", got, want)
	isUTC(t, "ExpiresAt", got.ExpiresAt)

	pw := store.Session{ID: "s0", DID: "did:plc:pw", Handle: "pw.test", PDSURL: "https://pds.pw", Kind: store.SessionPassword,
		Tokens: store.SessionTokens{AccessJWT: "a", RefreshJWT: "r"}}
	must(t, st.SaveSession(ctx, pw))
	gotPW, err := st.GetSession(ctx, "s0")
	must(t, err)
	equal(t, "password session tokens", gotPW.Tokens, pw.Tokens)
	equal(t, "unknown expiry", gotPW.ExpiresAt, time.Time{})

	list, err := st.ListSessions(ctx)
	must(t, err)
	equal(t, "listed sessions", list, []store.Session{
		{ID: "s0", DID: "did:plc:pw", Handle: "pw.test", PDSURL: "https://pds.pw", Kind: store.SessionPassword, CreatedAt: gotPW.CreatedAt, UpdatedAt: gotPW.UpdatedAt},
		{ID: "s1", DID: "did:plc:fan", Handle: "fan.test", PDSURL: "https://pds.fan", Kind: store.SessionOAuth, ExpiresAt: stored(in.ExpiresAt), CreatedAt: stored(base), UpdatedAt: got.UpdatedAt},
	})

	// Saving again replaces everything but CreatedAt.
	re := oauthSession("s1")
	re.Handle, re.Tokens.AccessJWT, re.CreatedAt = "fan2.test", "access-2", at(time.Hour)
	must(t, st.SaveSession(ctx, re))
	got, err = st.GetSession(ctx, "s1")
	must(t, err)
	equal(t, "resaved handle+token+created", []any{got.Handle, got.Tokens.AccessJWT, got.CreatedAt}, []any{"fan2.test", "access-2", stored(base)})

	for _, bad := range []struct {
		s    store.Session
		want string
	}{
		{store.Session{DID: "d", Kind: store.SessionOAuth}, "ID is required"},
		{store.Session{ID: "x", Kind: store.SessionOAuth}, "DID is required"},
		{store.Session{ID: "x", DID: "d", Kind: "cookie"}, `Kind "cookie"`},
	} {
		errContains(t, st.SaveSession(ctx, bad.s), bad.want)
	}

	must(t, st.DeleteSession(ctx, "s1"))
	_, err = st.GetSession(ctx, "s1")
	notFound(t, err, "get session s1")
}

func testSessionCAS(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	must(t, st.SaveSession(ctx, oauthSession("s")))

	rotated := store.SessionTokens{AccessJWT: "access-2", RefreshJWT: "refresh-2", DPoPKey: "k", DPoPNonce: "n2"}
	ok, err := st.UpdateSessionTokens(ctx, "s", "refresh-wrong", rotated, at(2*time.Hour))
	must(t, err)
	equal(t, "swap with wrong old refresh", ok, false)

	ok, err = st.UpdateSessionTokens(ctx, "s", "refresh-1-s", rotated, at(2*time.Hour))
	must(t, err)
	equal(t, "swap with current refresh", ok, true)
	got, err := st.GetSession(ctx, "s")
	must(t, err)
	equal(t, "rotated tokens", got.Tokens, rotated)
	equal(t, "rotated expiry", got.ExpiresAt, stored(at(2*time.Hour)))

	// A stale writer that also refreshed from refresh-1 must not overwrite refresh-2.
	stale := store.SessionTokens{AccessJWT: "access-stale", RefreshJWT: "refresh-stale"}
	ok, err = st.UpdateSessionTokens(ctx, "s", "refresh-1-s", stale, at(3*time.Hour))
	must(t, err)
	equal(t, "stale swap", ok, false)
	got, err = st.GetSession(ctx, "s")
	must(t, err)
	equal(t, "tokens after stale swap", got.Tokens, rotated)

	_, err = st.UpdateSessionTokens(ctx, "missing", "r", rotated, time.Time{})
	notFound(t, err, "update session missing tokens")

	// Many concurrent refreshers from the same token: exactly one wins.
	const n = 10
	var wg sync.WaitGroup
	wins := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			next := store.SessionTokens{AccessJWT: fmt.Sprint("a", i), RefreshJWT: fmt.Sprint("refresh-3-", i)}
			ok, err := st.UpdateSessionTokens(ctx, "s", "refresh-2", next, time.Time{})
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins <- next.RefreshJWT
			}
		})
	}
	wg.Wait()
	close(wins)
	var winners []string
	for w := range wins {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("%d concurrent swaps won, want 1: %v", len(winners), winners)
	}
	got, err = st.GetSession(ctx, "s")
	must(t, err)
	equal(t, "winner's refresh token stored", got.Tokens.RefreshJWT, winners[0])
}

func testSessionAtRest(t *testing.T, b backend) {
	ctx := context.Background()
	opts := b.options(t)
	opts.EncryptionKey = storetest.TestKey
	st, err := store.Open(ctx, opts)
	must(t, err)
	defer st.Close()
	must(t, st.Migrate(ctx))
	a, bb := oauthSession("sa"), oauthSession("sb")
	must(t, st.SaveSession(ctx, a))
	must(t, st.SaveSession(ctx, bb))

	raw := store.RawDB(st)
	blob := func(id string) []byte {
		var v []byte
		must(t, raw.QueryRowContext(ctx, store.Rebind(st, `SELECT token_blob FROM user_sessions WHERE id = ?`), id).Scan(&v))
		return v
	}
	blobA := blob("sa")
	for _, secret := range []string{a.Tokens.AccessJWT, a.Tokens.RefreshJWT, "private", a.Tokens.DPoPNonce} {
		if bytes.Contains(blobA, []byte(secret)) {
			t.Fatalf("raw token_blob contains %q", secret)
		}
	}
	var row string
	must(t, raw.QueryRowContext(ctx, store.Rebind(st, `SELECT id || did || handle || pds_url || kind || refresh_digest FROM user_sessions WHERE id = ?`), "sa").Scan(&row))
	if strings.Contains(row, "SECRET") || strings.Contains(row, "refresh-1") {
		t.Fatalf("clear columns contain a token: %q", row)
	}
	// Same tokens, different nonce: two saves never produce the same blob.
	must(t, st.SaveSession(ctx, a))
	if bytes.Equal(blob("sa"), blobA) {
		t.Fatal("re-saving produced an identical blob (nonce reused)")
	}

	// A blob moved to another row does not decrypt (the ID is associated data).
	_, err = raw.ExecContext(ctx, store.Rebind(st, `UPDATE user_sessions SET token_blob = ? WHERE id = ?`), blob("sa"), "sb")
	must(t, err)
	_, err = st.GetSession(ctx, "sb")
	errContains(t, err, "does not decrypt")

	// Another key cannot read it either.
	other := opts
	other.EncryptionKey = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktISE="
	st2, err := store.Open(ctx, other)
	must(t, err)
	defer st2.Close()
	_, err = st2.GetSession(ctx, "sa")
	errContains(t, err, "wrong SESSION_ENCRYPTION_KEY")
	// ...nor swap, since the refresh digest is keyed.
	ok, err := st2.UpdateSessionTokens(ctx, "sa", a.Tokens.RefreshJWT, store.SessionTokens{RefreshJWT: "x"}, time.Time{})
	must(t, err)
	equal(t, "swap under another key", ok, false)
}

func testSessionsWithoutKey(t *testing.T, b backend) {
	ctx := context.Background()
	opts := b.options(t)
	keyed := opts
	keyed.EncryptionKey = storetest.TestKey
	withKey, err := store.Open(ctx, keyed)
	must(t, err)
	defer withKey.Close()
	must(t, withKey.Migrate(ctx))
	must(t, withKey.SaveSession(ctx, oauthSession("s")))

	st, err := store.Open(ctx, opts) // no key
	must(t, err)
	defer st.Close()
	for name, err := range map[string]error{
		"SaveSession": st.SaveSession(ctx, oauthSession("t")),
		"GetSession":  func() error { _, err := st.GetSession(ctx, "s"); return err }(),
		"UpdateSessionTokens": func() error {
			_, err := st.UpdateSessionTokens(ctx, "s", "refresh-1-s", store.SessionTokens{}, time.Time{})
			return err
		}(),
	} {
		if !errors.Is(err, store.ErrNoEncryptionKey) {
			t.Fatalf("%s without key: got %v, want ErrNoEncryptionKey", name, err)
		}
		errContains(t, err, "SESSION_ENCRYPTION_KEY")
	}
	list, err := st.ListSessions(ctx)
	must(t, err)
	equal(t, "listed without key", len(list), 1)
	must(t, st.DeleteSession(ctx, "s"))
}

func testJobs(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	const typ, owner = "export:media", "did:plc:owner"

	j, created, err := st.CreateJobOnce(ctx, store.Job{Type: typ, OwnerDID: owner, TaskID: "task-1", Message: "queued", CreatedAt: base})
	must(t, err)
	equal(t, "created", created, true)
	if j.ID == "" {
		t.Fatal("no job ID assigned")
	}
	want := store.Job{ID: j.ID, Type: typ, Status: store.JobPending, OwnerDID: owner, TaskID: "task-1", Message: "queued",
		CreatedAt: stored(base), UpdatedAt: stored(base)}
	equal(t, "created job", j, want)
	got, err := st.GetJob(ctx, j.ID)
	must(t, err)
	equal(t, "got job", got, want)

	// Same type+owner while active: the existing job comes back.
	dup, created, err := st.CreateJobOnce(ctx, store.Job{ID: "other-id", Type: typ, OwnerDID: owner})
	must(t, err)
	equal(t, "duplicate created", created, false)
	equal(t, "duplicate returns existing", dup, want)
	_, err = st.GetJob(ctx, "other-id")
	notFound(t, err, "get job other-id")
	// Other owner or other type: independent.
	_, created, err = st.CreateJobOnce(ctx, store.Job{Type: typ, OwnerDID: "did:plc:someone"})
	must(t, err)
	equal(t, "other owner created", created, true)
	_, created, err = st.CreateJobOnce(ctx, store.Job{Type: "export:other", OwnerDID: owner, CreatedAt: at(time.Second)})
	must(t, err)
	equal(t, "other type created", created, true)

	// Running is still active.
	running := store.JobRunning
	progress, phase := 42.5, "zipping"
	upd, err := st.UpdateJob(ctx, j.ID, store.JobUpdate{Status: &running, Progress: &progress, Phase: &phase})
	must(t, err)
	equal(t, "running fields", []any{upd.Status, upd.Progress, upd.Phase, upd.Message, upd.CompletedAt}, []any{store.JobRunning, 42.5, "zipping", "queued", time.Time{}})
	if !upd.UpdatedAt.After(upd.CreatedAt) {
		t.Fatalf("UpdatedAt %v not after CreatedAt %v", upd.UpdatedAt, upd.CreatedAt)
	}
	_, created, err = st.CreateJobOnce(ctx, store.Job{Type: typ, OwnerDID: owner})
	must(t, err)
	equal(t, "created while running", created, false)

	// Done: result, completion time, and a new job may start.
	done, msg, errText, taskID := store.JobDone, "finished", "", "task-9"
	hundred := 100.0
	result := json.RawMessage(`{"url":"https://cdn/x.zip","bytes":123}`)
	upd, err = st.UpdateJob(ctx, j.ID, store.JobUpdate{Status: &done, Progress: &hundred, Message: &msg, Result: result, Error: &errText, TaskID: &taskID})
	must(t, err)
	if upd.CompletedAt.IsZero() || upd.CompletedAt != upd.UpdatedAt {
		t.Fatalf("CompletedAt %v, UpdatedAt %v: want both set to the same now", upd.CompletedAt, upd.UpdatedAt)
	}
	isUTC(t, "CompletedAt", upd.CompletedAt)
	equal(t, "done job", upd, store.Job{ID: j.ID, Type: typ, Status: store.JobDone, OwnerDID: owner, TaskID: "task-9", Progress: 100,
		Phase: "zipping", Message: "finished", Result: result, CreatedAt: stored(base), UpdatedAt: upd.UpdatedAt, CompletedAt: upd.CompletedAt})
	next, created, err := st.CreateJobOnce(ctx, store.Job{Type: typ, OwnerDID: owner, CreatedAt: at(time.Hour)})
	must(t, err)
	equal(t, "created after done", created, true)

	// Failed with an error message.
	failed, boom := store.JobFailed, "upload: 503"
	upd, err = st.UpdateJob(ctx, next.ID, store.JobUpdate{Status: &failed, Error: &boom})
	must(t, err)
	equal(t, "failed", []any{upd.Status, upd.Error, upd.CompletedAt.IsZero()}, []any{store.JobFailed, "upload: 503", false})

	// Validation and not-found.
	bad := 101.0
	_, err = st.UpdateJob(ctx, j.ID, store.JobUpdate{Progress: &bad})
	errContains(t, err, "Progress 101 is outside 0..100")
	weird := store.JobStatus("paused")
	_, err = st.UpdateJob(ctx, j.ID, store.JobUpdate{Status: &weird})
	errContains(t, err, `Status "paused"`)
	_, err = st.UpdateJob(ctx, j.ID, store.JobUpdate{Result: json.RawMessage(`{nope`)})
	errContains(t, err, "Result is not valid JSON")
	_, err = st.UpdateJob(ctx, "ghost", store.JobUpdate{Phase: &phase})
	notFound(t, err, "update job ghost")
	_, err = st.GetJob(ctx, "ghost")
	notFound(t, err, "get job ghost")
	_, _, err = st.CreateJobOnce(ctx, store.Job{OwnerDID: owner})
	errContains(t, err, "Type is required")

	// ListJobs: newest first, filtered, limited.
	list, err := st.ListJobs(ctx, typ, owner, 0)
	must(t, err)
	equal(t, "owner's exports newest first", jobIDs(list), []string{next.ID, j.ID})
	list, err = st.ListJobs(ctx, typ, owner, 1)
	must(t, err)
	equal(t, "limit 1", jobIDs(list), []string{next.ID})
	list, err = st.ListJobs(ctx, "", owner, 10)
	must(t, err)
	equal(t, "owner's jobs", len(list), 3)
	list, err = st.ListJobs(ctx, typ, "", 10)
	must(t, err)
	equal(t, "all exports", len(list), 3)
	list, err = st.ListJobs(ctx, "", "", 10)
	must(t, err)
	equal(t, "all jobs", len(list), 4)
}

func jobIDs(js []store.Job) []string {
	var ids []string
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids
}

func testCreateJobOnceConcurrent(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	const n = 10
	type res struct {
		id      string
		created bool
	}
	out := make(chan res, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			j, created, err := st.CreateJobOnce(ctx, store.Job{ID: fmt.Sprint("job-", i), Type: "export:media", OwnerDID: "did:plc:racer"})
			if err != nil {
				t.Error(err)
				return
			}
			out <- res{j.ID, created}
		})
	}
	close(start)
	wg.Wait()
	close(out)
	createdCount, ids := 0, map[string]bool{}
	for r := range out {
		ids[r.id] = true
		if r.created {
			createdCount++
		}
	}
	equal(t, "jobs created", createdCount, 1)
	equal(t, "distinct job IDs returned", len(ids), 1)
	list, err := st.ListJobs(ctx, "export:media", "did:plc:racer", 0)
	must(t, err)
	equal(t, "rows", len(list), 1)
}

func testScans(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	seedArtist(t, st)
	withRecord := seedTrack(t, st, "a", at(1))
	noRecord := seedTrack(t, st, "b", at(2))
	clean := seedTrack(t, st, "c", at(3))
	second := seedTrack(t, st, "d", at(4))
	for _, tr := range []store.Track{withRecord, clean, second} {
		must(t, st.SetTrackRecord(ctx, tr.ID, fmt.Sprintf("at://artist/fm.plyr.track/%d", tr.ID), "cid"))
	}

	_, err := st.GetScan(ctx, withRecord.ID)
	notFound(t, err, fmt.Sprintf("get scan of track %d", withRecord.ID))

	s := store.CopyrightScan{
		TrackID: withRecord.ID, Status: store.ScanFlagged, Flagged: true, DominantMatchPct: 87.5,
		DominantMatch: "Artist - Song", SustainedSongCount: 2, HighestScore: 0.93,
		Matches: json.RawMessage(`[{"title":"Song","score":0.93}]`), Raw: json.RawMessage(`{"result":{"ok":true}}`),
		ScannedAt: at(time.Minute),
	}
	must(t, st.SaveScan(ctx, s))
	got, err := st.GetScan(ctx, withRecord.ID)
	must(t, err)
	want := s
	want.ScannedAt = stored(s.ScannedAt)
	equal(t, "scan", got, want)

	// A rescan replaces the row.
	rescan := store.CopyrightScan{TrackID: clean.ID, Status: store.ScanFlagged, Flagged: true, ScannedAt: at(time.Minute)}
	must(t, st.SaveScan(ctx, rescan))
	rescan = store.CopyrightScan{TrackID: clean.ID, Status: store.ScanClean, Error: "", HighestScore: 0.1, ScannedAt: at(time.Hour)}
	must(t, st.SaveScan(ctx, rescan))
	got, err = st.GetScan(ctx, clean.ID)
	must(t, err)
	equal(t, "rescan", got, store.CopyrightScan{TrackID: clean.ID, Status: store.ScanClean, HighestScore: 0.1, ScannedAt: stored(at(time.Hour))})

	must(t, st.SaveScan(ctx, store.CopyrightScan{TrackID: noRecord.ID, Status: store.ScanFlagged, Flagged: true}))
	must(t, st.SaveScan(ctx, store.CopyrightScan{TrackID: second.ID, Status: store.ScanFlagged, Flagged: true}))
	flagged, err := st.ListFlaggedWithRecord(ctx)
	must(t, err)
	equal(t, "flagged with record", flagged, []store.FlaggedTrack{
		{TrackID: withRecord.ID, RecordURI: fmt.Sprintf("at://artist/fm.plyr.track/%d", withRecord.ID)},
		{TrackID: second.ID, RecordURI: fmt.Sprintf("at://artist/fm.plyr.track/%d", second.ID)},
	})

	// ClearFlags counts only scans it unflagged (clean is not flagged; 999 has none).
	resolved := at(2 * time.Hour)
	n, err := st.ClearFlags(ctx, []int64{withRecord.ID, clean.ID, 999999}, resolved)
	must(t, err)
	equal(t, "cleared", n, 1)
	got, err = st.GetScan(ctx, withRecord.ID)
	must(t, err)
	want.Flagged, want.ResolvedAt = false, stored(resolved)
	equal(t, "cleared scan keeps status flagged", got, want)
	n, err = st.ClearFlags(ctx, []int64{withRecord.ID}, resolved)
	must(t, err)
	equal(t, "cleared again", n, 0)
	n, err = st.ClearFlags(ctx, nil, resolved)
	must(t, err)
	equal(t, "cleared none", n, 0)
	flagged, err = st.ListFlaggedWithRecord(ctx)
	must(t, err)
	equal(t, "still flagged", flagged, []store.FlaggedTrack{{TrackID: second.ID, RecordURI: fmt.Sprintf("at://artist/fm.plyr.track/%d", second.ID)}})

	// Batches larger than one statement.
	many := make([]int64, 0, 1201)
	for i := range int64(1200) {
		many = append(many, 1_000_000+i)
	}
	many = append(many, second.ID)
	n, err = st.ClearFlags(ctx, many, resolved)
	must(t, err)
	equal(t, "cleared in batches", n, 1)

	errContains(t, st.SaveScan(ctx, store.CopyrightScan{TrackID: clean.ID, Status: "maybe"}), `Status "maybe"`)
	errContains(t, st.SaveScan(ctx, store.CopyrightScan{TrackID: clean.ID, Status: store.ScanClean, Matches: json.RawMessage(`[`)}), "Matches is not valid JSON")
	if err := st.SaveScan(ctx, store.CopyrightScan{TrackID: 888888, Status: store.ScanClean}); err == nil {
		t.Fatal("SaveScan for a missing track succeeded")
	}
}

// testConcurrentWriters hammers one store from 20 goroutines with
// transactional and single-statement writes; on SQLite this would fail with
// "database is locked" without busy_timeout and BEGIN IMMEDIATE.
func testConcurrentWriters(t *testing.T, b backend) {
	ctx := context.Background()
	st := b.open(t)
	seedArtist(t, st)
	album, err := st.CreateAlbum(ctx, store.Album{ArtistDID: artistDID, Title: "shared"})
	must(t, err)
	const workers, rounds = 20, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				tr, err := st.CreateTrack(ctx, store.Track{ArtistDID: artistDID, Title: fmt.Sprint(w, "-", r)})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if _, err := st.CreateLike(ctx, store.Like{TrackID: tr.ID, UserDID: fmt.Sprint("did:plc:u", w)}); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if err := st.SetAlbumTracks(ctx, album.ID, []int64{tr.ID}); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if _, _, err := st.CreateJobOnce(ctx, store.Job{Type: "t", OwnerDID: fmt.Sprint(w)}); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if _, err := st.ListArtistTracks(ctx, artistDID); err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	tracks, err := st.ListArtistTracks(ctx, artistDID)
	must(t, err)
	equal(t, "tracks written", len(tracks), workers*rounds)
	likes, err := st.ListUserLikes(ctx, "did:plc:u7")
	must(t, err)
	equal(t, "likes of one worker", len(likes), rounds)
	a, err := st.GetAlbum(ctx, album.ID)
	must(t, err)
	equal(t, "album holds the last replacement", len(a.TrackIDs), 1)
	jobs, err := st.ListJobs(ctx, "t", "", 0)
	must(t, err)
	equal(t, "one active job per owner", len(jobs), workers)
}
