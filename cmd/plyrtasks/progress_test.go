package main

import (
	"encoding/json"
	"testing"

	"github.com/plyr-fm/plyrtasks/api"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name string
		st   api.TaskStatus
		want string
	}{
		{"pending", api.TaskStatus{State: "pending"}, "pending"},
		{"active without progress", api.TaskStatus{State: "active"}, "active"},
		{"export progress", api.TaskStatus{State: "active", Progress: json.RawMessage(`{"phase":"archiving","percent":31,"tracks_done":4,"tracks_total":13,"bytes_done":52000000,"bytes_total":168300000}`)},
			"[#########.....................]   31%  archiving  4/13 tracks  52.0 MB/168.3 MB"},
		{"bare percent", api.TaskStatus{State: "active", Progress: json.RawMessage(`50`)}, "[###############...............]   50%"},
		{"done", api.TaskStatus{State: "completed", Progress: json.RawMessage(`{"percent":100,"phase":"done"}`)}, "[##############################]  100%  done"},
		{"message wins over counters", api.TaskStatus{State: "active", Progress: json.RawMessage(`{"phase":"archiving","percent":31,"tracks_done":4,"tracks_total":13,"message":"4 of 13 tracks, 52.0 MB"}`)},
			"[#########.....................]   31%  archiving  4 of 13 tracks, 52.0 MB"},
		{"over 100 clamps", api.TaskStatus{State: "active", Progress: json.RawMessage(`{"percent":140}`)}, "[##############################]  100%"},
		{"retry", api.TaskStatus{State: "retry", Attempts: 2, MaxRetry: 8, LastError: "pds said no"}, "retry: attempt 2 of 9 failed: pds said no"},
		{"archived", api.TaskStatus{State: "archived", Attempts: 1, Retried: 0, MaxRetry: 8, LastError: "invalid payload"}, "archived after 1 attempt(s): invalid payload"},
		{"inline failure", api.TaskStatus{State: "failed", LastError: "boom"}, "failed: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := progressLine(&tt.st); got != tt.want {
				t.Errorf("progressLine =\n %q\nwant\n %q", got, tt.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{0, "0 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {1500000, "1.5 MB"}, {2e9, "2.0 GB"}}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
