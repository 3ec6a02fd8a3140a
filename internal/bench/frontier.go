package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
)

// FrontierPoint is one worker setting on the latency/idle-cost frontier.
type FrontierPoint struct {
	// Label names the point ("plain 1s", "wake 20ms", "preset default").
	Label string
	// Wake: the woken worker (ActiveCheckInterval, Linger); otherwise a
	// plain plyrtasks worker polling every TaskCheckInterval.
	Wake                bool
	TaskCheckInterval   time.Duration
	ActiveCheckInterval time.Duration
	Linger              time.Duration

	// Measured.
	P50, P99    time.Duration // pickup at Rate
	N           int
	IdleCmds    float64 // top-level commands/s of the idle worker
	IdleCmdsLua float64 // with Lua internals
	// TaskCmds: the worker's top-level commands per task at Rate, its
	// empty polls included.
	TaskCmds float64
}

// FrontierOptions size a frontier run. Zero fields take the defaults.
type FrontierOptions struct {
	Quick bool
	// Points to measure. Default DefaultFrontier(Quick).
	Points []FrontierPoint
	// Concurrency of the worker. Default 100.
	Concurrency int
	// Rate for RateDuration after a second of warm-up. Default 500/s for
	// 5s (quick 2s).
	Rate         int
	RateDuration time.Duration
	// IdleWindow per point. Default 15s (quick 3s).
	IdleWindow time.Duration
	Spawn      Spawn
	Progress   io.Writer
}

// DefaultFrontier is the sweep: plain workers over a range of check
// intervals, woken workers over a range of active check intervals (idle
// check 1s), and the presets (config.WorkerPresets) as woken workers.
func DefaultFrontier(quick bool) []FrontierPoint {
	plain := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
		250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second}
	active := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond}
	if quick {
		plain = []time.Duration{50 * time.Millisecond, time.Second, 5 * time.Second}
		active = nil
	}
	var out []FrontierPoint
	for _, d := range plain {
		out = append(out, FrontierPoint{Label: "plain, check " + d.String(), TaskCheckInterval: d})
	}
	for _, d := range active {
		out = append(out, FrontierPoint{Label: "wake, active " + d.String() + ", idle check 1s", Wake: true,
			TaskCheckInterval: time.Second, ActiveCheckInterval: d, Linger: time.Second})
	}
	for _, p := range config.WorkerPresets() {
		out = append(out, FrontierPoint{Label: "preset " + p.Name, Wake: true, TaskCheckInterval: p.TaskCheckInterval,
			ActiveCheckInterval: p.WakeActiveCheckInterval, Linger: p.WakeLinger})
	}
	return out
}

// Frontier is a frontier run's result.
type Frontier struct {
	Options FrontierOptions
	Points  []FrontierPoint
	Took    time.Duration
}

// RunFrontier starts a redis-server and measures every point: idle cost
// over IdleWindow (the worker behind a counting proxy), then pickup at
// Rate.
func RunFrontier(ctx context.Context, o FrontierOptions) (*Frontier, error) {
	if o.Spawn == nil {
		return nil, errors.New("bench: FrontierOptions.Spawn is required")
	}
	if o.Points == nil {
		o.Points = DefaultFrontier(o.Quick)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 100
	}
	if o.Rate == 0 {
		o.Rate = 500
	}
	if o.RateDuration == 0 {
		o.RateDuration = 5 * time.Second
		if o.Quick {
			o.RateDuration = 2 * time.Second
		}
	}
	if o.IdleWindow == 0 {
		o.IdleWindow = 15 * time.Second
		if o.Quick {
			o.IdleWindow = 3 * time.Second
		}
	}
	start := time.Now()
	rs, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	defer rs.stop()
	b := &runner{o: Options{Concurrency: o.Concurrency, Rate: o.Rate, RateDuration: o.RateDuration,
		EnqueueConcurrency: 16, Spawn: o.Spawn, Progress: o.Progress}, redis: rs}
	b.admin = newAdmin(rs.Addr, 2*o.Concurrency)
	defer b.admin.Close()
	f := &Frontier{Options: o}
	for _, pt := range o.Points {
		b.progress("frontier: %s", pt.Label)
		if err := b.point(ctx, o, &pt); err != nil {
			return nil, fmt.Errorf("%s: %w", pt.Label, err)
		}
		f.Points = append(f.Points, pt)
	}
	f.Took = time.Since(start)
	return f, nil
}

func (b *runner) point(ctx context.Context, o FrontierOptions, pt *FrontierPoint) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	mode := ModePlyrtasks
	if pt.Wake {
		mode = ModeWake
	}
	wp, err := newCountingProxy(b.redis.Addr)
	if err != nil {
		return err
	}
	defer wp.Close()
	w, err := b.spawn(ctx, WorkerConfig{Redis: wp.Addr(), Mode: mode, Concurrency: o.Concurrency,
		TaskCheckInterval: pt.TaskCheckInterval, ActiveCheckInterval: pt.ActiveCheckInterval, Linger: pt.Linger})
	if err != nil {
		return err
	}
	defer w.stop()
	if err := sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	if pt.IdleCmds, pt.IdleCmdsLua, err = b.idleRate(ctx, wp, o.IdleWindow); err != nil {
		return err
	}

	p := newProducer(mode, b.redis.Addr)
	defer p.close()
	var rateTop int64
	lat, err := b.atRate(ctx, w, p, func(phase int) {
		if phase == 0 {
			wp.Reset()
		} else {
			rateTop = wp.Count()
		}
	})
	if err != nil {
		return err
	}
	pt.N = len(lat)
	pt.P50, pt.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if pt.N > 0 {
		pt.TaskCmds = float64(rateTop) / float64(pt.N)
	}
	return nil
}
