package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/tasks"
)

// States returns the states a task can be listed in.
func States() []string {
	return []string{"pending", "active", "scheduled", "retry", "archived", "completed"}
}

// Paging defaults and limits of List.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	// MaxPage bounds Page so that the offset (Page-1)*PageSize stays far
	// from overflowing (it wrapped to a negative offset and panicked).
	MaxPage = 1_000_000
	// DefaultMaxScan is Options.MaxScan's default.
	DefaultMaxScan = 10000
	// maxScanBatch is the largest page the scan behind a type filter
	// reads at once.
	maxScanBatch = 500
)

// ListOptions select the tasks List returns.
type ListOptions struct {
	// State is one of States. Default "pending".
	State string
	// Type keeps only tasks of this type ("" keeps all).
	Type string
	// Queue is a logical queue ("bulk") or "" for every queue of the
	// namespace (in name order).
	Queue string
	// Page is 1-based. Default 1.
	Page int
	// PageSize is 1..MaxPageSize. Default DefaultPageSize.
	PageSize int
}

// TaskPage is one page of List.
type TaskPage struct {
	State    string `json:"state"`
	Type     string `json:"type,omitempty"`
	Queue    string `json:"queue,omitempty"`
	Page     int    `json:"page"`
	PageSize int    `json:"page_size"`
	Tasks    []Task `json:"tasks"`
	// Total is how many tasks are in State in the listed queues, of any
	// type.
	Total int `json:"total"`
	// HasMore says that a next page has tasks.
	HasMore bool `json:"has_more"`
	// Truncated says the type filter stopped after reading
	// Options.MaxScan tasks: matches further on are not listed, and
	// HasMore does not know of them.
	Truncated bool `json:"truncated,omitempty"`
}

func (o *ListOptions) normalize() error {
	var errs []error
	if o.State == "" {
		o.State = "pending"
	}
	if !slices.Contains(States(), o.State) {
		errs = append(errs, &tasks.FieldError{Field: "state", Reason: fmt.Sprintf("must be one of %s, got %q", strings.Join(States(), ", "), o.State)})
	}
	if o.Page == 0 {
		o.Page = 1
	}
	if o.Page < 1 || o.Page > MaxPage {
		errs = append(errs, &tasks.FieldError{Field: "page", Reason: fmt.Sprintf("must be 1..%d", MaxPage)})
	}
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.PageSize < 1 || o.PageSize > MaxPageSize {
		errs = append(errs, &tasks.FieldError{Field: "page_size", Reason: fmt.Sprintf("must be 1..%d", MaxPageSize)})
	}
	return errors.Join(errs...)
}

// List returns one page of the tasks in a state, optionally of one type
// and one queue. Without a type filter it reads only the page (plus one
// count per queue); with one it reads the state's tasks in batches until
// the page is full, at most Options.MaxScan of them.
func (c *Controller) List(ctx context.Context, o ListOptions) (*TaskPage, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	var queues []string
	if o.Queue != "" {
		q, err := c.resolveQueue(o.Queue)
		if err != nil {
			return nil, err
		}
		queues = []string{q}
	}
	existing, err := c.existingQueues()
	if err != nil {
		return nil, err
	}
	if o.Queue == "" {
		queues = existing
	}
	page := &TaskPage{State: o.State, Type: o.Type, Queue: o.Queue, Page: o.Page, PageSize: o.PageSize, Tasks: []Task{}}
	counts := make([]int, len(queues))
	for i, q := range queues {
		if !slices.Contains(existing, q) {
			continue // declared, no task yet
		}
		n, err := c.count(q, o.State)
		if err != nil {
			return nil, err
		}
		counts[i] = n
		page.Total += n
	}
	skip := (o.Page - 1) * o.PageSize
	want := o.PageSize + 1 // one more tells whether a next page exists
	var found []*asynq.TaskInfo
	scanned := 0
	for i, q := range queues {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if o.Type == "" {
			// Counts let whole queues be skipped without reading them.
			if skip >= counts[i] {
				skip -= counts[i]
				continue
			}
			infos, err := c.listRange(q, o.State, skip, want-len(found))
			if err != nil {
				return nil, err
			}
			skip = 0
			found = append(found, infos...)
		} else {
			for off := 0; off < counts[i] && len(found) < want; off += c.scanBatch() {
				if scanned >= c.opts.MaxScan {
					page.Truncated = true
					break
				}
				batch, err := c.listPage(q, o.State, off/c.scanBatch()+1, c.scanBatch())
				if err != nil {
					return nil, err
				}
				scanned += len(batch)
				for _, info := range batch {
					if info.Type != o.Type {
						continue
					}
					if skip > 0 {
						skip--
						continue
					}
					if len(found) < want {
						found = append(found, info)
					}
				}
				if len(batch) < c.scanBatch() {
					break
				}
			}
		}
		if len(found) >= want || page.Truncated {
			break
		}
	}
	if len(found) > o.PageSize {
		page.HasMore = true
		found = found[:o.PageSize]
	}
	for _, info := range found {
		page.Tasks = append(page.Tasks, c.task(info))
	}
	return page, nil
}

// scanBatch is the page size of the scan behind a type filter.
func (c *Controller) scanBatch() int { return min(maxScanBatch, c.opts.MaxScan) }

// count is how many tasks queue q holds in state.
func (c *Controller) count(q, state string) (int, error) {
	info, err := c.insp.GetQueueInfo(q)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", q, err)
	}
	switch state {
	case "pending":
		return info.Pending, nil
	case "active":
		return info.Active, nil
	case "scheduled":
		return info.Scheduled, nil
	case "retry":
		return info.Retry, nil
	case "archived":
		return info.Archived, nil
	case "completed":
		return info.Completed, nil
	}
	return 0, nil
}

// listRange returns up to n tasks of q in state from position offset:
// at most two of asynq's aligned pages of size n.
func (c *Controller) listRange(q, state string, offset, n int) ([]*asynq.TaskInfo, error) {
	first := offset/n + 1
	out, err := c.listPage(q, state, first, n)
	if err != nil {
		return nil, err
	}
	out = out[min(offset%n, len(out)):]
	if len(out) < n && offset%n != 0 {
		more, err := c.listPage(q, state, first+1, n)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out[:min(n, len(out))], nil
}

func (c *Controller) listPage(q, state string, page, size int) ([]*asynq.TaskInfo, error) {
	opts := []asynq.ListOption{asynq.Page(page), asynq.PageSize(size)}
	var infos []*asynq.TaskInfo
	var err error
	switch state {
	case "pending":
		infos, err = c.insp.ListPendingTasks(q, opts...)
	case "active":
		infos, err = c.insp.ListActiveTasks(q, opts...)
	case "scheduled":
		infos, err = c.insp.ListScheduledTasks(q, opts...)
	case "retry":
		infos, err = c.insp.ListRetryTasks(q, opts...)
	case "archived":
		infos, err = c.insp.ListArchivedTasks(q, opts...)
	case "completed":
		infos, err = c.insp.ListCompletedTasks(q, opts...)
	}
	if err != nil {
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return nil, nil // deleted meanwhile
		}
		return nil, fmt.Errorf("list %s tasks of %s: %w", state, q, err)
	}
	return infos, nil
}

// Show returns the task with id, payload and result redacted.
func (c *Controller) Show(ctx context.Context, id string) (*Task, error) {
	info, err := c.find(ctx, id)
	if err != nil {
		return nil, err
	}
	t := c.task(info)
	return &t, nil
}

// Retry moves an archived task (or one waiting in retry or scheduled) to
// pending, so a worker runs it now; its retry count is kept. A pending or
// active task is ErrConflict, as is a completed one (enqueue it anew).
func (c *Controller) Retry(ctx context.Context, id string) (*Task, error) {
	info, err := c.find(ctx, id)
	if err != nil {
		return nil, err
	}
	switch info.State {
	case asynq.TaskStateArchived, asynq.TaskStateRetry, asynq.TaskStateScheduled:
	default:
		return nil, fmt.Errorf("%w: task %s is %s; only archived, retry and scheduled tasks can be retried", ErrConflict, id, info.State)
	}
	if err := c.insp.RunTask(info.Queue, id); err != nil {
		if errors.Is(err, asynq.ErrTaskNotFound) {
			return nil, fmt.Errorf("%w: task %s vanished while retrying it", ErrNotFound, id)
		}
		return nil, fmt.Errorf("%w: retry %s: %w", ErrConflict, id, err)
	}
	c.log.InfoContext(ctx, "control: task retried", slog.String("id", id), slog.String("kind", info.Type),
		slog.String("queue", c.logical(info.Queue)), slog.String("was", info.State.String()))
	c.wake(ctx, info.Queue)
	return c.Show(ctx, id)
}

// CancelResult is what Cancel did.
type CancelResult struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	Queue         string `json:"queue"`
	PreviousState string `json:"previous_state"`
	// State is what became of it:
	//   deleted    it had not started (pending, scheduled, retry): it will never run
	//   archived   it was running: stopped and archived (retry it to run it again)
	//   completed  it finished before the cancel reached it
	//   canceling  the cancel was sent but its worker has not stopped it
	//              within CancelWait (a worker that died: the task comes
	//              back when its lease expires; cancel again then)
	State string `json:"state"`
}

// Cancel stops a task: a pending, scheduled or retry task is deleted; an
// active one has its handler's context cancelled (asynq's
// CancelProcessing), and once asynq has taken it off the active list —
// within CancelWait — it is archived so it does not run again. A completed
// or archived task is ErrConflict.
func (c *Controller) Cancel(ctx context.Context, id string) (*CancelResult, error) {
	info, err := c.find(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &CancelResult{ID: id, Type: info.Type, Queue: c.logical(info.Queue), PreviousState: info.State.String()}
	switch info.State {
	case asynq.TaskStateCompleted, asynq.TaskStateArchived:
		return nil, fmt.Errorf("%w: task %s is already %s", ErrConflict, id, info.State)
	case asynq.TaskStateActive:
		if err := c.insp.CancelProcessing(id); err != nil {
			return nil, fmt.Errorf("cancel task %s: %w", id, err)
		}
		r.State, err = c.archiveStopped(ctx, info.Queue, id)
		if err != nil {
			return nil, err
		}
	default:
		if err := c.insp.DeleteTask(info.Queue, id); err != nil {
			if errors.Is(err, asynq.ErrTaskNotFound) {
				return nil, fmt.Errorf("%w: task %s changed state while cancelling; try again", ErrConflict, id)
			}
			return nil, fmt.Errorf("delete task %s: %w", id, err)
		}
		r.State = "deleted"
	}
	c.log.InfoContext(ctx, "control: task cancelled", slog.String("id", id), slog.String("kind", info.Type),
		slog.String("queue", r.Queue), slog.String("was", r.PreviousState), slog.String("now", r.State))
	return r, nil
}

// archiveStopped waits for a cancelled task to leave the active list and
// archives it where asynq put it back for a retry.
func (c *Controller) archiveStopped(ctx context.Context, q, id string) (string, error) {
	deadline := time.Now().Add(c.opts.CancelWait)
	for {
		info, err := c.insp.GetTaskInfo(q, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			return "completed", nil // finished without retention
		case err != nil:
			return "", fmt.Errorf("cancel task %s: %w", id, err)
		}
		switch info.State {
		case asynq.TaskStateRetry, asynq.TaskStatePending, asynq.TaskStateScheduled:
			if err := c.insp.ArchiveTask(q, id); err != nil {
				// The worker archives an operator-cancelled task too
				// (package server): whoever is first, it is archived.
				if now, e := c.insp.GetTaskInfo(q, id); e == nil && now.State == asynq.TaskStateArchived {
					return "archived", nil
				}
				return "", fmt.Errorf("cancel task %s: archive: %w", id, err)
			}
			return "archived", nil
		case asynq.TaskStateArchived, asynq.TaskStateCompleted:
			return info.State.String(), nil
		}
		if time.Now().After(deadline) {
			return "canceling", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}
