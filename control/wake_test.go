package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/internal/rdb"
)

// From the second newcomer run: with the economy preset, a retried task
// and a resumed queue waited ~5 s for the woken worker's idle check, while
// an enqueue started at once. Retry and resume now signal the workers like
// an enqueue does.
func TestRetryAndResumeWakeWorkers(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	ps := e.rc.Subscribe(ctx, rdb.WakeChannel(ns))
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := ps.Channel()
	expectWake := func(what string) {
		t.Helper()
		select {
		case <-msgs:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s published no wake signal", what)
		}
	}

	info, err := e.aq.Enqueue(asynq.NewTask("copyright:scan", []byte(`{"track_id":1,"audio_url":"https://cdn.example/1.mp3"}`)), asynq.Queue(ns+":default"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.insp.ArchiveTask(ns+":default", info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctl.Retry(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	expectWake("Retry")

	if _, err := e.ctl.Pause(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctl.Resume(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	expectWake("Resume")
}
