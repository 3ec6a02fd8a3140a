package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// atproto:sync (args: tasks.ATProtoSyncArgs), run on login, brings the
// user's plyr.fm records on their PDS in line with the database:
//
//   - the profile (fm.plyr.actor.profile, rkey "self") of an artist: written
//     only when the PDS lacks it or a field plyr.fm owns differs; createdAt
//     and every field plyr.fm does not own are kept. (The store keeps no
//     bio or avatar yet, so today that means "created once".)
//   - every album's list (as album:list-sync does), keeping the order
//     already on the PDS and appending tracks it lacks;
//   - the "Liked Tracks" list (listType "liked", newest first): the order
//     on the PDS is kept, likes it lacks go in front (they are the newest),
//     unliked tracks leave. Its key is the one stored in the preferences,
//     else LikedListRecordKey.
//
// Keys are deterministic and every list write is a compare-and-swap, so two
// syncs of one user at once make one record per list, not two. A sync that
// fails part-way retries as a whole: each step is idempotent.

// LikedListRecordKey is the record key of a user's liked-tracks list when
// the preferences store none: one fixed TID, so every sync of a user
// converges on one record.
func LikedListRecordKey() string { return pds.TID(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 0) }

// LikedListName is the liked-tracks list's name.
const LikedListName = "Liked Tracks"

// ATProtoSync handles atproto:sync.
type ATProtoSync struct{ pdsBase }

// NewATProtoSync returns the atproto:sync handler.
func NewATProtoSync(d Deps) *ATProtoSync { return &ATProtoSync{newPDSBase(d)} }

// Work syncs one user's records.
func (h *ATProtoSync) Work(ctx context.Context, j *job.Job[tasks.ATProtoSyncArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *ATProtoSync) work(ctx context.Context, j *job.Job[tasks.ATProtoSyncArgs]) error {
	sess, err := h.session(ctx, j.Args.SessionID, j.Args.DID)
	if err != nil {
		return err
	}
	profile, err := h.syncProfile(ctx, sess)
	if err != nil {
		return err
	}
	albums, err := h.store.ListArtistAlbums(ctx, sess.DID())
	if err != nil {
		return fmt.Errorf("albums of %s: %w", sess.DID(), err)
	}
	albumURIs := []string{}
	for _, al := range albums {
		ref, _, err := h.syncAlbumList(ctx, sess, al, true)
		if err != nil {
			return err
		}
		if ref.URI != "" {
			albumURIs = append(albumURIs, ref.URI)
		}
	}
	liked, n, err := h.syncLikedList(ctx, sess)
	if err != nil {
		return err
	}
	h.log.Info("atproto: synced records", "did", sess.DID(), "profile", profile, "albums", len(albumURIs), "liked_items", n)
	h.setResult(j.Task, map[string]any{"profile": profile, "album_lists": albumURIs, "liked_list": liked.URI, "liked_items": n})
	return nil
}

// syncProfile makes sure an artist has a profile record. It returns
// "written", "unchanged" or "not-an-artist".
func (h *ATProtoSync) syncProfile(ctx context.Context, sess *pds.Session) (string, error) {
	if _, err := h.store.GetArtist(ctx, sess.DID()); errors.Is(err, store.ErrNotFound) {
		return "not-an-artist", nil
	} else if err != nil {
		return "", fmt.Errorf("artist %s: %w", sess.DID(), err)
	}
	for range maxSwapAttempts {
		rec, err := sess.GetRecord(ctx, h.col.Profile, "self")
		switch {
		case err == nil:
			// Nothing plyr.fm owns differs (the store has no profile
			// fields yet): keep the record as it is, createdAt and all.
			return "unchanged", h.rememberProfile(ctx, sess.DID(), rec.CID)
		case !errors.Is(err, pds.ErrRecordNotFound):
			return "", err
		}
		ref, err := sess.PutRecord(ctx, h.col.Profile, "self", pds.ProfileRecord{CreatedAt: pds.Datetime(time.Now())}, pds.IfMissing())
		if pds.IsInvalidSwap(err) {
			continue // another sync created it just now
		}
		if err != nil {
			return "", err
		}
		return "written", h.rememberProfile(ctx, sess.DID(), ref.CID)
	}
	return "", fmt.Errorf("profile record changed %d times while being written; retrying later", maxSwapAttempts)
}

// rememberProfile stores the profile record's CID in the preferences.
func (h *ATProtoSync) rememberProfile(ctx context.Context, did, cid string) error {
	p, err := h.store.GetPreferences(ctx, did)
	if err != nil {
		return fmt.Errorf("preferences of %s: %w", did, err)
	}
	if p.ProfileCID == cid {
		return nil
	}
	p.DID, p.ProfileCID = did, cid
	if err := h.store.SavePreferences(ctx, p); err != nil {
		return fmt.Errorf("preferences of %s: %w", did, err)
	}
	return nil
}

// syncLikedList writes the liked-tracks list and stores its URI/CID in the
// preferences. It returns the list and its item count.
func (h *ATProtoSync) syncLikedList(ctx context.Context, sess *pds.Session) (pds.Ref, int, error) {
	likes, err := h.store.ListUserLikes(ctx, sess.DID())
	if err != nil {
		return pds.Ref{}, 0, fmt.Errorf("likes of %s: %w", sess.DID(), err)
	}
	ids := make([]int64, len(likes))
	for i, l := range likes {
		ids[i] = l.TrackID
	}
	items, err := h.trackRefs(ctx, ids) // newest first, as ListUserLikes
	if err != nil {
		return pds.Ref{}, 0, err
	}
	prefs, err := h.store.GetPreferences(ctx, sess.DID())
	if err != nil {
		return pds.Ref{}, 0, fmt.Errorf("preferences of %s: %w", sess.DID(), err)
	}
	rkey := storedRecordKey(sess, prefs.LikedListURI, h.col.List)
	if rkey == "" {
		rkey = LikedListRecordKey()
	}
	now := time.Now()
	count := 0
	ref, _, err := h.upsertList(ctx, sess, rkey, func(old *pds.ListRecord) (pds.ListRecord, bool) {
		if old == nil && len(items) == 0 {
			return pds.ListRecord{}, false
		}
		next := pds.ListRecord{Name: LikedListName, ListType: pds.ListTypeLiked, Items: keepOrder(old, items, true)}
		count = len(next.Items)
		return next, listTimes(old, &next, now)
	})
	if err != nil {
		return pds.Ref{}, 0, fmt.Errorf("liked list: %w", err)
	}
	if ref.URI != "" && (ref.URI != prefs.LikedListURI || ref.CID != prefs.LikedListCID) {
		// Re-read: the profile step may have saved the preferences.
		p, err := h.store.GetPreferences(ctx, sess.DID())
		if err != nil {
			return pds.Ref{}, 0, fmt.Errorf("preferences of %s: %w", sess.DID(), err)
		}
		p.DID, p.LikedListURI, p.LikedListCID = sess.DID(), ref.URI, ref.CID
		if err := h.store.SavePreferences(ctx, p); err != nil {
			return pds.Ref{}, 0, fmt.Errorf("preferences of %s: %w", sess.DID(), err)
		}
	}
	return ref, count, nil
}
