package store

import (
	"context"
	"errors"
	"fmt"
)

const likeCols = `id, track_id, user_did, record_uri, created_at`

func scanLike(row interface{ Scan(...any) error }) (Like, error) {
	var l Like
	var created int64
	err := row.Scan(&l.ID, &l.TrackID, &l.UserDID, &l.RecordURI, &created)
	l.CreatedAt = fromMS(created)
	return l, err
}

// CreateLike inserts l and returns it with the assigned ID (l.ID is
// ignored) and CreatedAt (now when zero). The track must exist.
func (s *sqlStore) CreateLike(ctx context.Context, l Like) (Like, error) {
	if l.UserDID == "" {
		return Like{}, errors.New("create like: UserDID is required")
	}
	out, err := scanLike(s.db.QueryRowContext(ctx, s.q(`
		INSERT INTO track_likes (track_id, user_did, record_uri, created_at)
		VALUES (?, ?, ?, ?) RETURNING `+likeCols),
		l.TrackID, l.UserDID, l.RecordURI, toMS(orNow(l.CreatedAt))))
	if err != nil {
		return Like{}, fmt.Errorf("create like of track %d: %w", l.TrackID, err)
	}
	return out, nil
}

func (s *sqlStore) GetLike(ctx context.Context, id int64) (Like, error) {
	l, err := scanLike(s.db.QueryRowContext(ctx, s.q(`SELECT `+likeCols+` FROM track_likes WHERE id = ?`), id))
	if err != nil {
		return Like{}, notFound(err, fmt.Sprintf("get like %d", id))
	}
	return l, nil
}

func (s *sqlStore) DeleteLike(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM track_likes WHERE id = ?`), id)
	return requireOne(res, err, fmt.Sprintf("delete like %d", id))
}

func (s *sqlStore) SetLikeRecord(ctx context.Context, id int64, uri string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE track_likes SET record_uri = ? WHERE id = ?`), uri, id)
	return requireOne(res, err, fmt.Sprintf("set like %d record", id))
}

// ListUserLikes returns the user's likes, newest first (ties: higher ID first).
func (s *sqlStore) ListUserLikes(ctx context.Context, userDID string) ([]Like, error) {
	what := "list likes of " + userDID
	rows, err := s.db.QueryContext(ctx, s.q(`
		SELECT `+likeCols+` FROM track_likes WHERE user_did = ? ORDER BY created_at DESC, id DESC`), userDID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Like
	for rows.Next() {
		l, err := scanLike(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

const commentCols = `id, track_id, user_did, text, timestamp_ms, record_uri, created_at, updated_at`

func scanComment(row interface{ Scan(...any) error }) (Comment, error) {
	var c Comment
	var created, updated int64
	err := row.Scan(&c.ID, &c.TrackID, &c.UserDID, &c.Text, &c.TimestampMS, &c.RecordURI, &created, &updated)
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return c, err
}

// CreateComment inserts c and returns it with the assigned ID (c.ID is
// ignored); CreatedAt defaults to now and UpdatedAt to CreatedAt.
func (s *sqlStore) CreateComment(ctx context.Context, c Comment) (Comment, error) {
	if c.UserDID == "" {
		return Comment{}, errors.New("create comment: UserDID is required")
	}
	created := orNow(c.CreatedAt)
	updated := created
	if !c.UpdatedAt.IsZero() {
		updated = orNow(c.UpdatedAt)
	}
	out, err := scanComment(s.db.QueryRowContext(ctx, s.q(`
		INSERT INTO track_comments (track_id, user_did, text, timestamp_ms, record_uri, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+commentCols),
		c.TrackID, c.UserDID, c.Text, c.TimestampMS, c.RecordURI, toMS(created), toMS(updated)))
	if err != nil {
		return Comment{}, fmt.Errorf("create comment on track %d: %w", c.TrackID, err)
	}
	return out, nil
}

func (s *sqlStore) GetComment(ctx context.Context, id int64) (Comment, error) {
	c, err := scanComment(s.db.QueryRowContext(ctx, s.q(`SELECT `+commentCols+` FROM track_comments WHERE id = ?`), id))
	if err != nil {
		return Comment{}, notFound(err, fmt.Sprintf("get comment %d", id))
	}
	return c, nil
}

func (s *sqlStore) SetCommentRecord(ctx context.Context, id int64, uri string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE track_comments SET record_uri = ? WHERE id = ?`), uri, id)
	return requireOne(res, err, fmt.Sprintf("set comment %d record", id))
}

func (s *sqlStore) DeleteComment(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM track_comments WHERE id = ?`), id)
	return requireOne(res, err, fmt.Sprintf("delete comment %d", id))
}
