package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// UpsertArtist inserts the artist or updates handle, display name and PDS
// URL; CreatedAt (now when zero) is kept from the first insert.
func (s *sqlStore) UpsertArtist(ctx context.Context, a Artist) error {
	if a.DID == "" {
		return errors.New("upsert artist: DID is required")
	}
	_, err := s.db.ExecContext(ctx, s.q(`
		INSERT INTO artists (did, handle, display_name, pds_url, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET handle = excluded.handle,
			display_name = excluded.display_name, pds_url = excluded.pds_url`),
		a.DID, a.Handle, a.DisplayName, a.PDSURL, toMS(orNow(a.CreatedAt)))
	if err != nil {
		return fmt.Errorf("upsert artist %s: %w", a.DID, err)
	}
	return nil
}

func (s *sqlStore) GetArtist(ctx context.Context, did string) (Artist, error) {
	var a Artist
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`
		SELECT did, handle, display_name, pds_url, created_at FROM artists WHERE did = ?`), did).
		Scan(&a.DID, &a.Handle, &a.DisplayName, &a.PDSURL, &created)
	if err != nil {
		return Artist{}, notFound(err, "get artist "+did)
	}
	a.CreatedAt = fromMS(created)
	return a, nil
}

const trackCols = `id, artist_did, title, file_key, file_type, original_key, original_type,
	album_id, record_uri, record_cid, created_at`

func scanTrack(row interface{ Scan(...any) error }) (Track, error) {
	var t Track
	var album sql.NullInt64
	var created int64
	err := row.Scan(&t.ID, &t.ArtistDID, &t.Title, &t.FileKey, &t.FileType, &t.OriginalKey,
		&t.OriginalType, &album, &t.RecordURI, &t.RecordCID, &created)
	t.AlbumID = album.Int64
	t.CreatedAt = fromMS(created)
	return t, err
}

// CreateTrack inserts t and returns it with the assigned ID (t.ID is
// ignored) and CreatedAt (now when zero). The artist must exist.
func (s *sqlStore) CreateTrack(ctx context.Context, t Track) (Track, error) {
	if t.ArtistDID == "" {
		return Track{}, errors.New("create track: ArtistDID is required")
	}
	out, err := scanTrack(s.db.QueryRowContext(ctx, s.q(`
		INSERT INTO tracks (artist_did, title, file_key, file_type, original_key, original_type,
			album_id, record_uri, record_cid, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+trackCols),
		t.ArtistDID, t.Title, t.FileKey, t.FileType, t.OriginalKey, t.OriginalType,
		nullID(t.AlbumID), t.RecordURI, t.RecordCID, toMS(orNow(t.CreatedAt))))
	if err != nil {
		return Track{}, fmt.Errorf("create track for %s: %w", t.ArtistDID, err)
	}
	return out, nil
}

func (s *sqlStore) GetTrack(ctx context.Context, id int64) (Track, error) {
	t, err := scanTrack(s.db.QueryRowContext(ctx, s.q(`SELECT `+trackCols+` FROM tracks WHERE id = ?`), id))
	if err != nil {
		return Track{}, notFound(err, fmt.Sprintf("get track %d", id))
	}
	return t, nil
}

// ListArtistTracks returns the artist's tracks in creation order (ties by ID).
func (s *sqlStore) ListArtistTracks(ctx context.Context, artistDID string) ([]Track, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT `+trackCols+` FROM tracks WHERE artist_did = ? ORDER BY created_at, id`), artistDID)
	if err != nil {
		return nil, fmt.Errorf("list tracks of %s: %w", artistDID, err)
	}
	defer rows.Close()
	var out []Track
	for rows.Next() {
		t, err := scanTrack(rows)
		if err != nil {
			return nil, fmt.Errorf("list tracks of %s: %w", artistDID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tracks of %s: %w", artistDID, err)
	}
	return out, nil
}

func (s *sqlStore) SetTrackRecord(ctx context.Context, id int64, uri, cid string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE tracks SET record_uri = ?, record_cid = ? WHERE id = ?`), uri, cid, id)
	return requireOne(res, err, fmt.Sprintf("set track %d record", id))
}

// CreateAlbum inserts a and its track order and returns it with the
// assigned ID (a.ID is ignored) and CreatedAt (now when zero).
func (s *sqlStore) CreateAlbum(ctx context.Context, a Album) (Album, error) {
	if a.ArtistDID == "" {
		return Album{}, errors.New("create album: ArtistDID is required")
	}
	if err := checkTrackIDs(a.TrackIDs); err != nil {
		return Album{}, fmt.Errorf("create album: %w", err)
	}
	a.CreatedAt = orNow(a.CreatedAt)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.q(`
			INSERT INTO albums (artist_did, title, list_uri, list_cid, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`),
			a.ArtistDID, a.Title, a.ListURI, a.ListCID, toMS(a.CreatedAt)).Scan(&a.ID); err != nil {
			return err
		}
		return s.insertAlbumTracks(ctx, tx, a.ID, a.TrackIDs)
	})
	if err != nil {
		return Album{}, fmt.Errorf("create album for %s: %w", a.ArtistDID, err)
	}
	a.TrackIDs = append([]int64(nil), a.TrackIDs...)
	return a, nil
}

func checkTrackIDs(ids []int64) error {
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return fmt.Errorf("TrackIDs lists track %d twice", id)
		}
		seen[id] = true
	}
	return nil
}

func (s *sqlStore) insertAlbumTracks(ctx context.Context, tx *sql.Tx, albumID int64, ids []int64) error {
	for pos, tid := range ids {
		if _, err := tx.ExecContext(ctx, s.q(`
			INSERT INTO album_tracks (album_id, position, track_id) VALUES (?, ?, ?)`), albumID, pos, tid); err != nil {
			return fmt.Errorf("album %d track %d: %w", albumID, tid, err)
		}
	}
	return nil
}

const albumCols = `id, artist_did, title, list_uri, list_cid, created_at`

func scanAlbum(row interface{ Scan(...any) error }) (Album, error) {
	var a Album
	var created int64
	err := row.Scan(&a.ID, &a.ArtistDID, &a.Title, &a.ListURI, &a.ListCID, &created)
	a.CreatedAt = fromMS(created)
	return a, err
}

func (s *sqlStore) GetAlbum(ctx context.Context, id int64) (Album, error) {
	a, err := scanAlbum(s.db.QueryRowContext(ctx, s.q(`SELECT `+albumCols+` FROM albums WHERE id = ?`), id))
	if err != nil {
		return Album{}, notFound(err, fmt.Sprintf("get album %d", id))
	}
	if a.TrackIDs, err = s.albumTrackIDs(ctx, id); err != nil {
		return Album{}, fmt.Errorf("get album %d: %w", id, err)
	}
	return a, nil
}

func (s *sqlStore) albumTrackIDs(ctx context.Context, id int64) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT track_id FROM album_tracks WHERE album_id = ? ORDER BY position`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var tid int64
		if err := rows.Scan(&tid); err != nil {
			return nil, err
		}
		ids = append(ids, tid)
	}
	return ids, rows.Err()
}

// ListArtistAlbums returns the artist's albums in creation order, each with
// its track order.
func (s *sqlStore) ListArtistAlbums(ctx context.Context, artistDID string) ([]Album, error) {
	what := "list albums of " + artistDID
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT `+albumCols+` FROM albums WHERE artist_did = ? ORDER BY created_at, id`), artistDID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var out []Album
	index := map[int64]int{}
	for rows.Next() {
		a, err := scanAlbum(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		index[a.ID] = len(out)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	rows, err = s.db.QueryContext(ctx, s.q(`
		SELECT x.album_id, x.track_id FROM album_tracks x JOIN albums a ON a.id = x.album_id
		WHERE a.artist_did = ? ORDER BY x.album_id, x.position`), artistDID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var aid, tid int64
		if err := rows.Scan(&aid, &tid); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if i, ok := index[aid]; ok {
			out[i].TrackIDs = append(out[i].TrackIDs, tid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// SetAlbumTracks replaces the album's track order with trackIDs. It does
// not change tracks.album_id.
func (s *sqlStore) SetAlbumTracks(ctx context.Context, id int64, trackIDs []int64) error {
	what := fmt.Sprintf("set album %d tracks", id)
	if err := checkTrackIDs(trackIDs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Lock the album row so concurrent replacements run one after the
		// other (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises).
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM albums WHERE id = ?`+s.forUpdate()), id).Scan(&one); err != nil {
			return notFound(err, what)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM album_tracks WHERE album_id = ?`), id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := s.insertAlbumTracks(ctx, tx, id, trackIDs); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

func (s *sqlStore) SetAlbumList(ctx context.Context, id int64, uri, cid string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE albums SET list_uri = ?, list_cid = ? WHERE id = ?`), uri, cid, id)
	return requireOne(res, err, fmt.Sprintf("set album %d list", id))
}
