package bench

import (
	"fmt"
	"strings"
	"time"
)

// Table renders the report as one Markdown table: a row per measure, a
// column per stack, ratios against bare asynq, and the single-Redis
// ceiling where one applies.
func (r *Report) Table() string {
	o := r.Options
	var sb strings.Builder
	fmt.Fprintf(&sb, "| measure | bare asynq | plyrtasks | plyrtasks + wake | plyrtasks ÷ asynq | wake ÷ asynq | single-Redis ceiling |\n")
	fmt.Fprintf(&sb, "|---|---:|---:|---:|---:|---:|---:|\n")
	a, p, w := r.Stacks[0], r.Stacks[1], r.Stacks[2]
	row := func(name string, f func(StackResult) float64, format func(float64) string, ceiling string) {
		va, vp, vw := f(a), f(p), f(w)
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s |\n", name, format(va), format(vp), format(vw), ratio(vp, va), ratio(vw, va), ceiling)
	}
	rate := func(v float64) string { return thousands(v) }
	ms := func(v float64) string { return fmtDur(time.Duration(v)) }
	cmds := func(v float64) string { return fmt.Sprintf("%.2f", v) }

	row(fmt.Sprintf("no-op tasks/s, backlog of %s, concurrency %d", thousands(float64(o.Tasks)), o.Concurrency),
		func(s StackResult) float64 { return s.TasksPerSec }, rate, thousands(r.Ceiling.TasksPerSec)+" (2 round trips/task)")
	row("enqueue/s, one at a time", func(s StackResult) float64 { return s.EnqueueSingle }, rate, thousands(r.Ceiling.EnqueueSingle))
	row(fmt.Sprintf("enqueue/s, %d goroutines", o.EnqueueConcurrency), func(s StackResult) float64 { return s.EnqueueConcurrent }, rate,
		thousands(r.Ceiling.EnqueueConcurrent)+fmt.Sprintf("; pipelined ×100: %s", thousands(r.Ceiling.Pipelined)))
	row(fmt.Sprintf("pickup p50 at %d tasks/s (n=%d)", o.Rate, a.RateN), func(s StackResult) float64 { return float64(s.RateP50) }, ms, "")
	row(fmt.Sprintf("pickup p99 at %d tasks/s", o.Rate), func(s StackResult) float64 { return float64(s.RateP99) }, ms, "")
	row(fmt.Sprintf("pickup p50 into idle queues (n=%d)", a.IdleN), func(s StackResult) float64 { return float64(s.IdleP50) }, ms, "")
	row("pickup p99 into idle queues", func(s StackResult) float64 { return float64(s.IdleP99) }, ms, "")
	row("Redis commands/task, top-level: enqueue", func(s StackResult) float64 { return s.EnqueueCmds }, cmds, "")
	row("… process (dequeue, ack, worker loops)", func(s StackResult) float64 { return s.ProcessCmds }, cmds, "")
	row("… total", func(s StackResult) float64 { return s.EnqueueCmds + s.ProcessCmds }, cmds, "")
	row("Redis commands/task with Lua internals", func(s StackResult) float64 { return s.EnqueueCmdsLua + s.ProcessCmdsLua }, cmds, "")
	row("idle worker: top-level commands/s", func(s StackResult) float64 { return s.IdleCmds }, cmds, "")
	row("idle worker: commands/s with Lua internals", func(s StackResult) float64 { return s.IdleCmdsLua }, cmds, "")
	if r.RSS.Tasks > 0 {
		var samples []string
		for _, v := range r.RSS.Samples {
			samples = append(samples, fmt.Sprintf("%.0f", mib(v)))
		}
		fmt.Fprintf(&sb, "| worker peak RSS (VmHWM) over %s tasks, MiB | | | %.1f | | | |\n", thousands(float64(r.RSS.Tasks)), mib(r.RSS.Peak))
		fmt.Fprintf(&sb, "| worker RSS samples over the run, MiB | | | %s | | | |\n", strings.Join(samples, " "))
	}
	return sb.String()
}

// Settings describes the run: sizes and the stacks' settings.
func (r *Report) Settings() string {
	o := r.Options
	return fmt.Sprintf("asynq and plyrtasks: TaskCheckInterval %s (both defaults), 3 queues (critical 6, default 3, bulk 1), tasks on default; "+
		"plyrtasks + wake: idle check %s, active check %s, linger %s. Run took %s.",
		o.TaskCheckInterval, o.TaskCheckInterval, o.ActiveCheckInterval, o.Linger, r.Took.Round(time.Second))
}

// Table renders the frontier as a Markdown table.
func (f *Frontier) Table() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| worker | pickup p50 at %d/s | pickup p99 at %d/s | idle top-level cmds/s | idle cmds/s with Lua | top-level cmds/task at %d/s (worker) |\n",
		f.Options.Rate, f.Options.Rate, f.Options.Rate)
	fmt.Fprintf(&sb, "|---|---:|---:|---:|---:|---:|\n")
	for _, p := range f.Points {
		fmt.Fprintf(&sb, "| %s | %s | %s | %.2f | %.2f | %.2f |\n", p.Label, fmtDur(p.P50), fmtDur(p.P99), p.IdleCmds, p.IdleCmdsLua, p.TaskCmds)
	}
	return sb.String()
}

func ratio(v, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/base)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// fmtDur prints a latency with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}

// thousands formats v rounded, with thin thousands separators (12,345).
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
