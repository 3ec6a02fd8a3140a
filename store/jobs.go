package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

const jobCols = `id, type, status, owner_did, task_id, progress, phase, message, result, error,
	created_at, updated_at, completed_at`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var status, result string
	var created, updated, completed int64
	err := row.Scan(&j.ID, &j.Type, &status, &j.OwnerDID, &j.TaskID, &j.Progress, &j.Phase,
		&j.Message, &result, &j.Error, &created, &updated, &completed)
	j.Status, j.Result = JobStatus(status), rawJSON(result)
	j.CreatedAt, j.UpdatedAt, j.CompletedAt = fromMS(created), fromMS(updated), fromMS(completed)
	return j, err
}

func validStatus(s JobStatus) bool {
	switch s {
	case JobPending, JobRunning, JobDone, JobFailed, JobCancelled:
		return true
	}
	return false
}

func checkProgress(p float64) error {
	if !(p >= 0 && p <= 100) { // also rejects NaN
		return fmt.Errorf("Progress %v is outside 0..100", p)
	}
	return nil
}

// createJobAttempts bounds the insert/lookup loop of CreateJobOnce: the
// active job found on conflict may finish before it is read, and then the
// insert is simply tried again.
const createJobAttempts = 5

// CreateJobOnce inserts j unless a job of the same type and owner is pending
// or running, in which case that job is returned with created=false. The
// partial unique index jobs_one_active makes this atomic across processes.
// Defaults: ID random, Status pending, CreatedAt now; UpdatedAt = CreatedAt;
// CompletedAt is set to CreatedAt when Status is terminal.
func (s *sqlStore) CreateJobOnce(ctx context.Context, j Job) (Job, bool, error) {
	if j.Type == "" {
		return Job{}, false, errors.New("create job: Type is required")
	}
	if j.ID == "" {
		j.ID = rand.Text()
	}
	if j.Status == "" {
		j.Status = JobPending
	}
	what := fmt.Sprintf("create %s job for %q", j.Type, j.OwnerDID)
	if !validStatus(j.Status) {
		return Job{}, false, fmt.Errorf("%s: Status %q is not a job status", what, j.Status)
	}
	if err := checkProgress(j.Progress); err != nil {
		return Job{}, false, fmt.Errorf("%s: %w", what, err)
	}
	result, err := jsonText(j.Result, "Result")
	if err != nil {
		return Job{}, false, fmt.Errorf("%s: %w", what, err)
	}
	created := orNow(j.CreatedAt)
	updated := created
	if !j.UpdatedAt.IsZero() {
		updated = orNow(j.UpdatedAt)
	}
	var completed int64
	if !j.Status.Active() {
		completed = toMS(created)
		if !j.CompletedAt.IsZero() {
			completed = toMS(orNow(j.CompletedAt))
		}
	}
	for range createJobAttempts {
		out, err := scanJob(s.db.QueryRowContext(ctx, s.q(`
			INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (type, owner_did) WHERE status IN ('pending', 'running') DO NOTHING
			RETURNING `+jobCols),
			j.ID, j.Type, string(j.Status), j.OwnerDID, j.TaskID, j.Progress, j.Phase, j.Message,
			result, j.Error, toMS(created), toMS(updated), completed))
		if err == nil {
			return out, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Job{}, false, fmt.Errorf("%s: %w", what, err)
		}
		out, err = scanJob(s.db.QueryRowContext(ctx, s.q(`
			SELECT `+jobCols+` FROM jobs
			WHERE type = ? AND owner_did = ? AND status IN ('pending', 'running')`), j.Type, j.OwnerDID))
		if err == nil {
			return out, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Job{}, false, fmt.Errorf("%s: %w", what, err)
		}
	}
	return Job{}, false, fmt.Errorf("%s: active job kept changing, gave up after %d attempts", what, createJobAttempts)
}

func (s *sqlStore) GetJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE id = ?`), id))
	if err != nil {
		return Job{}, notFound(err, "get job "+id)
	}
	return j, nil
}

// UpdateJob changes the non-nil fields of u (and non-empty Result) and
// returns the updated job. UpdatedAt becomes now; a terminal Status (done,
// failed, cancelled) sets CompletedAt to now, an active one clears it.
func (s *sqlStore) UpdateJob(ctx context.Context, id string, u JobUpdate) (Job, error) {
	what := "update job " + id
	ts := toMS(now())
	sets := []string{"updated_at = ?"}
	args := []any{ts}
	if u.Status != nil {
		if !validStatus(*u.Status) {
			return Job{}, fmt.Errorf("%s: Status %q is not a job status", what, *u.Status)
		}
		completed := ts
		if u.Status.Active() {
			completed = 0
		}
		sets = append(sets, "status = ?", "completed_at = ?")
		args = append(args, string(*u.Status), completed)
	}
	if u.TaskID != nil {
		sets = append(sets, "task_id = ?")
		args = append(args, *u.TaskID)
	}
	if u.Progress != nil {
		if err := checkProgress(*u.Progress); err != nil {
			return Job{}, fmt.Errorf("%s: %w", what, err)
		}
		sets = append(sets, "progress = ?")
		args = append(args, *u.Progress)
	}
	if u.Phase != nil {
		sets = append(sets, "phase = ?")
		args = append(args, *u.Phase)
	}
	if u.Message != nil {
		sets = append(sets, "message = ?")
		args = append(args, *u.Message)
	}
	if len(u.Result) > 0 {
		result, err := jsonText(u.Result, "Result")
		if err != nil {
			return Job{}, fmt.Errorf("%s: %w", what, err)
		}
		sets = append(sets, "result = ?")
		args = append(args, result)
	}
	if u.Error != nil {
		sets = append(sets, "error = ?")
		args = append(args, *u.Error)
	}
	args = append(args, id)
	j, err := scanJob(s.db.QueryRowContext(ctx, s.q(`
		UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? RETURNING `+jobCols), args...))
	if err != nil {
		return Job{}, notFound(err, what)
	}
	return j, nil
}

// DefaultListJobsLimit is ListJobs' limit when the caller passes 0 or less.
const DefaultListJobsLimit = 100

// ListJobs returns jobs newest first, filtered by type and owner when those
// are non-empty, at most limit (DefaultListJobsLimit when limit <= 0).
func (s *sqlStore) ListJobs(ctx context.Context, jobType, ownerDID string, limit int) ([]Job, error) {
	if limit <= 0 {
		limit = DefaultListJobsLimit
	}
	query := `SELECT ` + jobCols + ` FROM jobs WHERE 1 = 1`
	var args []any
	if jobType != "" {
		query += ` AND type = ?`
		args = append(args, jobType)
	}
	if ownerDID != "" {
		query += ` AND owner_did = ?`
		args = append(args, ownerDID)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}
