-- +goose Up
-- Report state of copyright flags (issue 5): which task produced a track's
-- current scan (copyright_scans row with the same scanned_at), and when its
-- flag reached the labeler (0 = not yet). A rescan writes a new scanned_at, so
-- a row for an older scan no longer counts. Keep both dialects' files in step.
CREATE TABLE copyright_reports (
    track_id    BIGINT PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL DEFAULT '',
    scanned_at  BIGINT NOT NULL,
    reported_at BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE copyright_reports;
