package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SaveSession inserts or replaces the session s.ID with its tokens sealed
// (AES-256-GCM, bound to the ID). CreatedAt is kept from the first save;
// UpdatedAt is now. ErrNoEncryptionKey without SESSION_ENCRYPTION_KEY.
func (s *sqlStore) SaveSession(ctx context.Context, sess Session) error {
	if s.seal == nil {
		return fmt.Errorf("save session: %w", ErrNoEncryptionKey)
	}
	switch {
	case sess.ID == "":
		return errors.New("save session: ID is required")
	case sess.DID == "":
		return fmt.Errorf("save session %s: DID is required", sess.ID)
	case sess.Kind != SessionOAuth && sess.Kind != SessionPassword:
		return fmt.Errorf("save session %s: Kind %q is not oauth or password", sess.ID, sess.Kind)
	}
	blob, err := s.seal.seal(sess.ID, sess.Tokens)
	if err != nil {
		return fmt.Errorf("save session %s: seal: %w", sess.ID, err)
	}
	ts := now()
	_, err = s.db.ExecContext(ctx, s.q(`
		INSERT INTO user_sessions (id, did, handle, pds_url, kind, token_blob, refresh_digest, expires_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET did = excluded.did, handle = excluded.handle,
			pds_url = excluded.pds_url, kind = excluded.kind, token_blob = excluded.token_blob,
			refresh_digest = excluded.refresh_digest, expires_at = excluded.expires_at,
			updated_at = excluded.updated_at`),
		sess.ID, sess.DID, sess.Handle, sess.PDSURL, string(sess.Kind), blob,
		s.seal.digest(sess.ID, sess.Tokens.RefreshJWT), toMS(sess.ExpiresAt),
		toMS(orNow(sess.CreatedAt)), toMS(ts))
	if err != nil {
		return fmt.Errorf("save session %s: %w", sess.ID, err)
	}
	return nil
}

// GetSession loads and decrypts a session.
func (s *sqlStore) GetSession(ctx context.Context, id string) (Session, error) {
	what := "get session " + id
	if s.seal == nil {
		return Session{}, fmt.Errorf("%s: %w", what, ErrNoEncryptionKey)
	}
	var sess Session
	var kind string
	var blob []byte
	var expires, created, updated int64
	err := s.db.QueryRowContext(ctx, s.q(`
		SELECT id, did, handle, pds_url, kind, token_blob, expires_at, created_at, updated_at
		FROM user_sessions WHERE id = ?`), id).
		Scan(&sess.ID, &sess.DID, &sess.Handle, &sess.PDSURL, &kind, &blob, &expires, &created, &updated)
	if err != nil {
		return Session{}, notFound(err, what)
	}
	if sess.Tokens, err = s.seal.open(sess.ID, blob); err != nil {
		return Session{}, fmt.Errorf("%s: %w", what, err)
	}
	sess.Kind = SessionKind(kind)
	sess.ExpiresAt, sess.CreatedAt, sess.UpdatedAt = fromMS(expires), fromMS(created), fromMS(updated)
	return sess, nil
}

// ListSessions returns every session ordered by ID with Tokens left empty;
// it never decrypts, so it works without a key.
func (s *sqlStore) ListSessions(ctx context.Context) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, did, handle, pds_url, kind, expires_at, created_at, updated_at
		FROM user_sessions ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var sess Session
		var kind string
		var expires, created, updated int64
		if err := rows.Scan(&sess.ID, &sess.DID, &sess.Handle, &sess.PDSURL, &kind, &expires, &created, &updated); err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		sess.Kind = SessionKind(kind)
		sess.ExpiresAt, sess.CreatedAt, sess.UpdatedAt = fromMS(expires), fromMS(created), fromMS(updated)
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteSession(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM user_sessions WHERE id = ?`), id)
	return requireOne(res, err, "delete session "+id)
}

// UpdateSessionTokens stores t only if the session's refresh token is still
// oldRefresh, in one conditional UPDATE: of two workers that refreshed the
// same token, the second (stale) one gets false and must reload. ErrNotFound
// when the session does not exist.
func (s *sqlStore) UpdateSessionTokens(ctx context.Context, id, oldRefresh string, t SessionTokens, expiresAt time.Time) (bool, error) {
	what := "update session " + id + " tokens"
	if s.seal == nil {
		return false, fmt.Errorf("%s: %w", what, ErrNoEncryptionKey)
	}
	blob, err := s.seal.seal(id, t)
	if err != nil {
		return false, fmt.Errorf("%s: seal: %w", what, err)
	}
	res, err := s.db.ExecContext(ctx, s.q(`
		UPDATE user_sessions SET token_blob = ?, refresh_digest = ?, expires_at = ?, updated_at = ?
		WHERE id = ? AND refresh_digest = ?`),
		blob, s.seal.digest(id, t.RefreshJWT), toMS(expiresAt), toMS(now()),
		id, s.seal.digest(id, oldRefresh))
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if n == 1 {
		return true, nil
	}
	var one int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM user_sessions WHERE id = ?`), id).Scan(&one); err != nil {
		return false, notFound(err, what)
	}
	return false, nil
}

// GetPreferences returns the user's preferences, or the defaults (scrobbling
// off, no liked list) when none are stored.
func (s *sqlStore) GetPreferences(ctx context.Context, did string) (Preferences, error) {
	p := Preferences{DID: did}
	err := s.db.QueryRowContext(ctx, s.q(`
		SELECT liked_list_uri, liked_list_cid, teal_scrobbling, profile_cid
		FROM user_preferences WHERE did = ?`), did).
		Scan(&p.LikedListURI, &p.LikedListCID, &p.TealScrobbling, &p.ProfileCID)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Preferences{DID: did}, nil
		}
		return Preferences{}, fmt.Errorf("get preferences of %s: %w", did, err)
	}
	return p, nil
}

// SavePreferences inserts or replaces every field of p.
func (s *sqlStore) SavePreferences(ctx context.Context, p Preferences) error {
	if p.DID == "" {
		return errors.New("save preferences: DID is required")
	}
	_, err := s.db.ExecContext(ctx, s.q(`
		INSERT INTO user_preferences (did, liked_list_uri, liked_list_cid, teal_scrobbling, profile_cid)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (did) DO UPDATE SET liked_list_uri = excluded.liked_list_uri,
			liked_list_cid = excluded.liked_list_cid, teal_scrobbling = excluded.teal_scrobbling,
			profile_cid = excluded.profile_cid`),
		p.DID, p.LikedListURI, p.LikedListCID, p.TealScrobbling, p.ProfileCID)
	if err != nil {
		return fmt.Errorf("save preferences of %s: %w", p.DID, err)
	}
	return nil
}
