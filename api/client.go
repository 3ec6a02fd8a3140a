package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// ClientEnqueuer adapts a *client.Client to Enqueuer: the API enqueues
// exactly as Go producers do (same validation, uniqueness and fallback).
// namespace is the client's, used to show queue names without it.
func ClientEnqueuer(c *client.Client, namespace string) Enqueuer {
	return EnqueuerFunc(func(ctx context.Context, kind string, payload []byte, o tasks.Opts) (Enqueued, error) {
		res, err := c.EnqueueRaw(ctx, kind, payload, client.WithOpts(o))
		if err != nil {
			if errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrClosed) {
				return Enqueued{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return Enqueued{}, err
		}
		out := Enqueued{ID: res.ID, Kind: res.Kind, Queue: DisplayQueue(namespace, res.Queue), State: res.State}
		switch res.Outcome {
		case client.Duplicate:
			out.Outcome = OutcomeDuplicate
		case client.RanInline:
			out.Outcome = OutcomeInline
			if res.Err != nil {
				out.Error = res.Err.Error()
			}
		default:
			out.Outcome = OutcomeEnqueued
		}
		return out, nil
	})
}
