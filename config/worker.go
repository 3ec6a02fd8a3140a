package config

import (
	"fmt"
	"strings"
	"time"
)

// Worker picks the worker's trade-off between pickup latency and Redis
// commands (see WorkerPresets; `plyrtasks bench frontier` measures them).
type Worker struct {
	// WORKER_PRESET: default, low-latency or economy (any case): the
	// defaults of TASK_CHECK_INTERVAL, DELAYED_TASK_CHECK_INTERVAL,
	// JANITOR_INTERVAL and of the woken worker's active check interval and
	// linger. A timing variable set explicitly wins over the preset. With
	// WORKER_WAKE: default idles at about 1 Redis command/s per worker and
	// picks tasks up in tens of milliseconds; low-latency checks idle queues
	// every 100ms (about 10 commands/s) for tasks enqueued without a wake;
	// economy checks every 5s (about 0.25 commands/s), for pay-per-command
	// Redis. Default: default.
	Preset string `env:"WORKER_PRESET" envDefault:"default"`

	// WORKER_WAKE: true runs the woken worker: idle, it runs no asynq
	// server, only one Redis script per TASK_CHECK_INTERVAL, and producers
	// wake it through Redis Pub/Sub when they enqueue; awake, it polls
	// every few milliseconds (the preset's) until idle again. false runs a
	// plain asynq server that polls every TASK_CHECK_INTERVAL. Default: true.
	Wake bool `env:"WORKER_WAKE" envDefault:"true"`

	// WakeActiveCheckInterval and WakeLinger come from the preset.
	WakeActiveCheckInterval time.Duration
	WakeLinger              time.Duration
}

// WorkerPreset is one WORKER_PRESET: the timing it sets.
type WorkerPreset struct {
	Name                     string
	TaskCheckInterval        time.Duration
	DelayedTaskCheckInterval time.Duration
	JanitorInterval          time.Duration
	// WakeActiveCheckInterval: the awake worker's poll interval (pickup
	// latency up to 1.5× this); WakeLinger: how long it stays awake after
	// the last pickup or wake.
	WakeActiveCheckInterval time.Duration
	WakeLinger              time.Duration
}

// Names of the presets.
const (
	PresetDefault    = "default"
	PresetLowLatency = "low-latency"
	PresetEconomy    = "economy"
)

// WorkerPresets returns the presets, default first. Their values sit on
// the measured frontier (README, "Performance and Redis cost").
func WorkerPresets() []WorkerPreset {
	return []WorkerPreset{
		{Name: PresetDefault, TaskCheckInterval: time.Second, DelayedTaskCheckInterval: 5 * time.Second,
			JanitorInterval: 8 * time.Second, WakeActiveCheckInterval: 20 * time.Millisecond, WakeLinger: time.Second},
		{Name: PresetLowLatency, TaskCheckInterval: 100 * time.Millisecond, DelayedTaskCheckInterval: time.Second,
			JanitorInterval: 8 * time.Second, WakeActiveCheckInterval: 10 * time.Millisecond, WakeLinger: 2 * time.Second},
		{Name: PresetEconomy, TaskCheckInterval: 5 * time.Second, DelayedTaskCheckInterval: 10 * time.Second,
			JanitorInterval: 30 * time.Second, WakeActiveCheckInterval: 50 * time.Millisecond, WakeLinger: 500 * time.Millisecond},
	}
}

// LookupWorkerPreset returns the preset named name (any case).
func LookupWorkerPreset(name string) (WorkerPreset, bool) {
	for _, p := range WorkerPresets() {
		if strings.EqualFold(strings.TrimSpace(name), p.Name) {
			return p, true
		}
	}
	return WorkerPreset{}, false
}

// applyWorkerPreset sets the preset's values on the timing variables
// environ leaves unset, and the wake settings. An unknown preset is
// reported by Validate.
func (c *Config) applyWorkerPreset(environ map[string]string) {
	c.Worker.Preset = strings.ToLower(strings.TrimSpace(c.Worker.Preset))
	p, ok := LookupWorkerPreset(c.Worker.Preset)
	if !ok {
		return
	}
	for name, v := range map[string]struct {
		field *time.Duration
		value time.Duration
	}{
		"TASK_CHECK_INTERVAL":         {&c.Timing.TaskCheckInterval, p.TaskCheckInterval},
		"DELAYED_TASK_CHECK_INTERVAL": {&c.Timing.DelayedTaskCheckInterval, p.DelayedTaskCheckInterval},
		"JANITOR_INTERVAL":            {&c.Timing.JanitorInterval, p.JanitorInterval},
	} {
		if _, set := environ[name]; !set {
			*v.field = v.value
		}
	}
	c.Worker.WakeActiveCheckInterval = p.WakeActiveCheckInterval
	c.Worker.WakeLinger = p.WakeLinger
}

// Validate checks WORKER_PRESET.
func (w *Worker) Validate() error {
	if _, ok := LookupWorkerPreset(w.Preset); !ok {
		return fmt.Errorf("WORKER_PRESET=%q is not allowed: want %s, %s or %s", w.Preset, PresetDefault, PresetLowLatency, PresetEconomy)
	}
	return nil
}
