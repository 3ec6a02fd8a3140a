package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
)

func TestWorkerPreset(t *testing.T) {
	tests := []struct {
		name            string
		env             map[string]string
		wantTCI, wantDT time.Duration
		wantJanitor     time.Duration
		wantActive      time.Duration
		wantLinger      time.Duration
		wantWake        bool
	}{
		{"default", nil, time.Second, 5 * time.Second, 8 * time.Second, 20 * time.Millisecond, time.Second, true},
		{"economy, any case", map[string]string{"WORKER_PRESET": " Economy"}, 5 * time.Second, 10 * time.Second, 30 * time.Second, 50 * time.Millisecond, 500 * time.Millisecond, true},
		{"low-latency", map[string]string{"WORKER_PRESET": "low-latency"}, 100 * time.Millisecond, time.Second, 8 * time.Second, 10 * time.Millisecond, 2 * time.Second, true},
		{"an explicit variable wins", map[string]string{"WORKER_PRESET": "economy", "TASK_CHECK_INTERVAL": "2s"}, 2 * time.Second, 10 * time.Second, 30 * time.Second, 50 * time.Millisecond, 500 * time.Millisecond, true},
		{"wake off", map[string]string{"WORKER_WAKE": "false"}, time.Second, 5 * time.Second, 8 * time.Second, 20 * time.Millisecond, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.LoadEnv(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			got := []time.Duration{c.Timing.TaskCheckInterval, c.Timing.DelayedTaskCheckInterval, c.Timing.JanitorInterval, c.Worker.WakeActiveCheckInterval, c.Worker.WakeLinger}
			want := []time.Duration{tt.wantTCI, tt.wantDT, tt.wantJanitor, tt.wantActive, tt.wantLinger}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("value %d = %s, want %s (all: %v)", i, got[i], want[i], got)
				}
			}
			if c.Worker.Wake != tt.wantWake {
				t.Errorf("Wake = %v, want %v", c.Worker.Wake, tt.wantWake)
			}
		})
	}
}

func TestWorkerPresetUnknownNamesTheVariable(t *testing.T) {
	_, err := config.LoadEnv(map[string]string{"WORKER_PRESET": "turbo"})
	if err == nil || !strings.Contains(err.Error(), `WORKER_PRESET="turbo" is not allowed: want default, low-latency or economy`) {
		t.Fatalf("err = %v", err)
	}
}

func TestWorkerPresetsAreInRange(t *testing.T) {
	ranges := config.TimingRanges()
	for _, p := range config.WorkerPresets() {
		for name, d := range map[string]time.Duration{
			"TASK_CHECK_INTERVAL": p.TaskCheckInterval, "DELAYED_TASK_CHECK_INTERVAL": p.DelayedTaskCheckInterval, "JANITOR_INTERVAL": p.JanitorInterval,
		} {
			if r := ranges[name]; d < r.Min || d > r.Max {
				t.Errorf("preset %s: %s=%s outside %s", p.Name, name, d, r)
			}
		}
	}
}
