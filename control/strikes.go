package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/plyr-fm/plyrtasks/strikes"
)

// Strikes lists the strikes in force, sorted by key.
func (c *Controller) Strikes(ctx context.Context) ([]strikes.Strike, error) {
	return c.strikes.List(ctx)
}

// Strike blocks the tasks rule matches (see package strikes): enqueues are
// refused and queued tasks are archived when they come up, on every worker
// within seconds. The rule must name a declared type and, with an
// argument, one of its top-level fields (a *tasks.FieldError otherwise).
// Who strikes comes from strikes.WithActor on ctx.
func (c *Controller) Strike(ctx context.Context, rule strikes.Rule, reason string) (strikes.Strike, error) {
	if err := rule.ValidateFor(c.opts.Catalog); err != nil {
		return strikes.Strike{}, err
	}
	st, err := c.strikes.Strike(ctx, rule, reason)
	if err != nil {
		return st, err
	}
	c.log.InfoContext(ctx, "control: strike", slog.String("strike", st.Key), slog.String("reason", st.Reason), slog.String("by", st.By))
	c.changed(ctx)
	return st, nil
}

// Restore lifts exactly rule's strike; ErrNotFound when there is none.
func (c *Controller) Restore(ctx context.Context, rule strikes.Rule) (strikes.Strike, error) {
	st, err := c.strikes.Restore(ctx, rule)
	if errors.Is(err, strikes.ErrNotStruck) {
		return st, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return st, err
	}
	c.log.InfoContext(ctx, "control: strike restored", slog.String("strike", st.Key))
	c.changed(ctx)
	return st, nil
}

// changed runs Options.StrikesChanged: this process' own watcher sees a
// strike before the answer goes back, rather than within seconds like the
// others, so an enqueue right after it through the same API is refused.
func (c *Controller) changed(ctx context.Context) {
	if c.opts.StrikesChanged == nil {
		return
	}
	if err := c.opts.StrikesChanged(ctx); err != nil {
		c.log.WarnContext(ctx, "control: refreshing this process' strikes failed; it catches up within seconds", slog.String("error", err.Error()))
	}
}
