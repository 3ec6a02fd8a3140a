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

// album:list-sync (args: tasks.AlbumListSyncArgs) writes an album's
// fm.plyr.list record (listType "album"): its published tracks'
// strongRefs in the album's order, under the album's title.
//
// The list is created once and then updated in place: its key is the one
// stored on the album, else AlbumListRecordKey(album), and every write is
// a compare-and-swap on what was read, so two concurrent syncs make one
// record. createdAt is kept; updatedAt is set when something changed, and
// nothing is written when nothing did. The album row gets the list's
// URI/CID. Only the album's owner can sync it (the session's DID must be
// the album's artist). An album with no published tracks and no list yet
// gets none.

// AlbumListRecordKey is the record key of album's fm.plyr.list record when
// the album has none stored yet.
func AlbumListRecordKey(a store.Album) string { return rowRecordKey(a.CreatedAt, a.ID) }

// AlbumListSync handles album:list-sync.
type AlbumListSync struct{ pdsBase }

// NewAlbumListSync returns the album:list-sync handler.
func NewAlbumListSync(d Deps) *AlbumListSync { return &AlbumListSync{newPDSBase(d)} }

// Work syncs one album's list.
func (h *AlbumListSync) Work(ctx context.Context, j *job.Job[tasks.AlbumListSyncArgs]) error {
	return pds.Classify(h.work(ctx, j))
}

func (h *AlbumListSync) work(ctx context.Context, j *job.Job[tasks.AlbumListSyncArgs]) error {
	a := j.Args
	sess, err := h.session(ctx, a.SessionID, "")
	if err != nil {
		return err
	}
	album, err := h.store.GetAlbum(ctx, a.AlbumID)
	if errors.Is(err, store.ErrNotFound) {
		h.log.Info("album: removed before its list sync ran; nothing written", "album_id", a.AlbumID)
		h.setResult(j.Task, map[string]any{"skipped": "album was removed"})
		return nil
	}
	if err != nil {
		return fmt.Errorf("album %d: %w", a.AlbumID, err)
	}
	if album.ArtistDID != sess.DID() {
		return job.Permanent(fmt.Errorf("album %d belongs to %s: only its owner can sync it (session acts as %s)", album.ID, album.ArtistDID, sess.DID()))
	}
	ref, wrote, err := h.syncAlbumList(ctx, sess, album, false)
	if err != nil {
		return err
	}
	h.setResult(j.Task, map[string]any{"uri": ref.URI, "cid": ref.CID, "written": wrote})
	return nil
}

// syncAlbumList writes album's list and stores its URI/CID on the row.
// Items come in the album's order; with keepPDSOrder (the login sync) the
// order already on the PDS is kept and tracks it lacks are appended.
func (b pdsBase) syncAlbumList(ctx context.Context, sess *pds.Session, album store.Album, keepPDSOrder bool) (pds.Ref, bool, error) {
	items, err := b.trackRefs(ctx, album.TrackIDs)
	if err != nil {
		return pds.Ref{}, false, fmt.Errorf("album %d: %w", album.ID, err)
	}
	rkey := storedRecordKey(sess, album.ListURI, b.col.List)
	if rkey == "" {
		rkey = AlbumListRecordKey(album)
	}
	now := time.Now()
	ref, wrote, err := b.upsertList(ctx, sess, rkey, func(old *pds.ListRecord) (pds.ListRecord, bool) {
		if old == nil && len(items) == 0 {
			return pds.ListRecord{}, false
		}
		next := pds.ListRecord{Name: album.Title, ListType: pds.ListTypeAlbum, Items: items}
		if keepPDSOrder {
			next.Items = keepOrder(old, items, false)
		}
		return next, listTimes(old, &next, now)
	})
	if err != nil {
		return pds.Ref{}, false, fmt.Errorf("album %d list: %w", album.ID, err)
	}
	if ref.URI != "" && (ref.URI != album.ListURI || ref.CID != album.ListCID) {
		if err := b.store.SetAlbumList(ctx, album.ID, ref.URI, ref.CID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return pds.Ref{}, false, fmt.Errorf("album %d: save list URI: %w", album.ID, err)
		}
	}
	return ref, wrote, nil
}
