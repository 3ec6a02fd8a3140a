package strikes

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds Start's subscription and first read, whatever the
// caller's context: a hung Redis must not hold up a process' start.
const startTimeout = 5 * time.Second

// Watcher keeps an in-memory copy of the strikes, for matching tasks on
// the hot path without a Redis call. It reloads them when a Store announces
// a change on the namespace's channel, and every PollInterval whatever
// pub/sub says (messages published while its connection was down are lost;
// on reconnect it reloads at once as well). Start it once; Shutdown stops
// it. Match, Check and the middleware are safe for concurrent use, and work
// (matching nothing) before Start and with a nil Redis client.
type Watcher struct {
	store *Store
	opts  Options
	log   *slog.Logger
	cur   atomic.Pointer[rules]
	// loaded is set once a read of Redis succeeded.
	loaded atomic.Bool
	// refreshMu orders reloads, so an older read never replaces a newer.
	refreshMu sync.Mutex

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	pubsub  *redis.PubSub
	wg      sync.WaitGroup
}

// NewWatcher returns a watcher of the strikes of opts.Namespace. rdb nil
// (no Redis configured) gives a watcher that never matches: strikes live
// in Redis.
func NewWatcher(rdb redis.UniversalClient, opts Options) *Watcher {
	opts = opts.withDefaults()
	w := &Watcher{opts: opts, log: opts.Logger}
	if rdb != nil {
		w.store = NewStore(rdb, opts)
	}
	w.cur.Store(&rules{})
	return w
}

// Start reads the strikes once, then keeps them fresh in the background
// until Shutdown. It does not fail when Redis cannot be read: it logs a
// warning and keeps trying every PollInterval, matching nothing meanwhile
// (a producer without Redis falls back to running tasks in-process, and
// must not be stopped by this). ctx (and at most 5s) bounds the subscription
// and the first read only. It returns an error only when called twice.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("strikes: Watcher already started")
	}
	w.started = true
	if w.store == nil {
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	// Subscribe before the first read, and wait for the confirmation, so
	// no change falls between the two.
	ctx, stop := context.WithTimeout(ctx, startTimeout)
	defer stop()
	w.pubsub = w.store.rdb.Subscribe(loopCtx, Channel(w.opts.Namespace))
	if _, err := w.pubsub.Receive(ctx); err != nil {
		w.log.Warn("strikes: cannot subscribe to strike changes yet; retrying",
			slog.String("error", err.Error()))
	}
	if err := w.Refresh(ctx); err != nil {
		w.log.Warn("strikes: cannot read strikes yet; none apply until Redis answers",
			slog.String("error", err.Error()), slog.Duration("retry_every", w.opts.PollInterval))
	}
	w.wg.Add(2)
	go w.listen(loopCtx, w.pubsub)
	go w.poll(loopCtx)
	return nil
}

// Shutdown stops the background reloads and waits for them. Match keeps
// answering from the last copy. It is safe to call more than once, and
// before Start.
func (w *Watcher) Shutdown() {
	w.mu.Lock()
	cancel, ps := w.cancel, w.pubsub
	w.cancel, w.pubsub = nil, nil
	w.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	_ = ps.Close()
	w.wg.Wait()
}

// Refresh rereads every strike now. On error the previous copy stays.
func (w *Watcher) Refresh(ctx context.Context) error {
	if w.store == nil {
		return nil
	}
	w.refreshMu.Lock()
	defer w.refreshMu.Unlock()
	all, err := w.store.load(ctx)
	if err != nil {
		return err
	}
	r := index(all)
	w.cur.Store(&r)
	if !w.loaded.Swap(true) {
		w.log.Debug("strikes: loaded", slog.Int("strikes", len(all)))
	}
	return nil
}

// Loaded reports whether the watcher has read the strikes from Redis at
// least once (before that it matches nothing).
func (w *Watcher) Loaded() bool { return w.loaded.Load() }

// Strikes returns the watcher's current copy of the strikes, sorted by
// key.
func (w *Watcher) Strikes() []Strike {
	var out []Strike
	for _, kr := range *w.cur.Load() {
		if kr.all != nil {
			out = append(out, *kr.all)
		}
		for _, vals := range kr.byField {
			for _, st := range vals {
				out = append(out, st)
			}
		}
	}
	sortByKey(out)
	return out
}

// Match reports the strike that blocks a task of kind with payload, from
// the in-memory copy: a map lookup for kinds without strikes, one decode
// of the payload's top level for a kind with argument strikes.
func (w *Watcher) Match(kind string, payload []byte) (Strike, bool) {
	return w.cur.Load().match(kind, payload)
}

// listen reloads on every announcement and on every (re)subscription:
// go-redis resubscribes after a reconnect, and whatever was announced in
// between is lost.
func (w *Watcher) listen(ctx context.Context, ps *redis.PubSub) {
	defer w.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Debug("strikes: pub/sub receive failed; reconnecting", slog.String("error", err.Error()))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				w.reload(ctx)
			}
		case *redis.Message:
			w.reload(ctx)
		}
	}
}

// poll reloads every PollInterval: the fallback when announcements are
// lost.
func (w *Watcher) poll(ctx context.Context) {
	defer w.wg.Done()
	t := time.NewTicker(w.opts.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.refreshBounded(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			w.log.Warn("strikes: reload failed; keeping the strikes last read", slog.String("error", err.Error()))
		case err == nil && failing:
			failing = false
			w.log.Info("strikes: reload works again")
		}
	}
}

func (w *Watcher) reload(ctx context.Context) {
	if err := w.refreshBounded(ctx); err != nil && ctx.Err() == nil {
		w.log.Debug("strikes: reload after announcement failed; the poll retries", slog.String("error", err.Error()))
	}
}

func (w *Watcher) refreshBounded(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(w.opts.PollInterval, 5*time.Second))
	defer cancel()
	return w.Refresh(ctx)
}
