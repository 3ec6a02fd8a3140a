-- +goose Up
-- Times are unix milliseconds (BIGINT); JSON is TEXT; booleans are 0/1. Keep
-- this file and ../postgres/00001_init.sql in step.

CREATE TABLE artists (
    did          TEXT PRIMARY KEY,
    handle       TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    pds_url      TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);

CREATE TABLE albums (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    artist_did TEXT NOT NULL REFERENCES artists (did) ON DELETE CASCADE,
    title      TEXT NOT NULL DEFAULT '',
    list_uri   TEXT NOT NULL DEFAULT '',
    list_cid   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX albums_artist_created ON albums (artist_did, created_at, id);

CREATE TABLE tracks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    artist_did    TEXT NOT NULL REFERENCES artists (did) ON DELETE CASCADE,
    title         TEXT NOT NULL DEFAULT '',
    file_key      TEXT NOT NULL DEFAULT '',
    file_type     TEXT NOT NULL DEFAULT '',
    original_key  TEXT NOT NULL DEFAULT '',
    original_type TEXT NOT NULL DEFAULT '',
    album_id      BIGINT REFERENCES albums (id) ON DELETE SET NULL,
    record_uri    TEXT NOT NULL DEFAULT '',
    record_cid    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE INDEX tracks_artist_created ON tracks (artist_did, created_at, id);

CREATE TABLE album_tracks (
    album_id BIGINT NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    track_id BIGINT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    PRIMARY KEY (album_id, position),
    UNIQUE (album_id, track_id)
);
CREATE INDEX album_tracks_track ON album_tracks (track_id);

CREATE TABLE track_likes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id   BIGINT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    user_did   TEXT NOT NULL,
    record_uri TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX track_likes_user_created ON track_likes (user_did, created_at DESC, id DESC);
CREATE INDEX track_likes_track ON track_likes (track_id);

CREATE TABLE track_comments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id     BIGINT NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    user_did     TEXT NOT NULL,
    text         TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL DEFAULT 0,
    record_uri   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX track_comments_track ON track_comments (track_id);

CREATE TABLE user_sessions (
    id             TEXT PRIMARY KEY,
    did            TEXT NOT NULL,
    handle         TEXT NOT NULL DEFAULT '',
    pds_url        TEXT NOT NULL DEFAULT '',
    kind           TEXT NOT NULL CHECK (kind IN ('oauth', 'password')),
    -- AES-256-GCM(nonce || ciphertext) of the token JSON, sealed to id.
    token_blob     BLOB NOT NULL,
    -- HMAC of the refresh token: the compare-and-swap key of UpdateSessionTokens.
    refresh_digest TEXT NOT NULL,
    expires_at     BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX user_sessions_did ON user_sessions (did);

CREATE TABLE user_preferences (
    did             TEXT PRIMARY KEY,
    liked_list_uri  TEXT NOT NULL DEFAULT '',
    liked_list_cid  TEXT NOT NULL DEFAULT '',
    teal_scrobbling INTEGER NOT NULL DEFAULT 0,
    profile_cid     TEXT NOT NULL DEFAULT ''
);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    owner_did    TEXT NOT NULL DEFAULT '',
    task_id      TEXT NOT NULL DEFAULT '',
    progress     REAL NOT NULL DEFAULT 0,
    phase        TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    completed_at BIGINT NOT NULL DEFAULT 0
);
-- At most one active job per (type, owner), enforced by the database so it
-- holds across processes: CreateJobOnce relies on it.
CREATE UNIQUE INDEX jobs_one_active ON jobs (type, owner_did) WHERE status IN ('pending', 'running');
CREATE INDEX jobs_type_owner_created ON jobs (type, owner_did, created_at DESC);

CREATE TABLE copyright_scans (
    track_id             BIGINT PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    status               TEXT NOT NULL CHECK (status IN ('clean', 'flagged', 'failed', 'skipped')),
    flagged              INTEGER NOT NULL DEFAULT 0,
    dominant_match_pct   REAL NOT NULL DEFAULT 0,
    dominant_match       TEXT NOT NULL DEFAULT '',
    sustained_song_count INTEGER NOT NULL DEFAULT 0,
    highest_score        REAL NOT NULL DEFAULT 0,
    matches              TEXT NOT NULL DEFAULT '',
    raw                  TEXT NOT NULL DEFAULT '',
    error                TEXT NOT NULL DEFAULT '',
    scanned_at           BIGINT NOT NULL,
    resolved_at          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX copyright_scans_flagged ON copyright_scans (track_id) WHERE flagged = 1;

-- +goose Down
DROP TABLE copyright_scans;
DROP TABLE jobs;
DROP TABLE user_preferences;
DROP TABLE user_sessions;
DROP TABLE track_comments;
DROP TABLE track_likes;
DROP TABLE album_tracks;
DROP TABLE tracks;
DROP TABLE albums;
DROP TABLE artists;
