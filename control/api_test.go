package control_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/plyr-fm/plyrtasks/api"
	"github.com/plyr-fm/plyrtasks/client"
	"github.com/plyr-fm/plyrtasks/control"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// TestMountedOnTheAPI mounts Routes on the real HTTP API: no pattern
// clashes with the API's own, the controls sit behind its bearer token,
// and the API's GET /v1/tasks/{id} decodes as a control.Task.
func TestMountedOnTheAPI(t *testing.T) {
	e := newEnv(t, false)
	const token = "control-test-token-0123456789"
	c := client.New(e.rc, client.Options{Namespace: ns, Logger: logging.Discard()})
	a, err := api.New(api.Options{
		Enqueuer: api.ClientEnqueuer(c, ns),
		Tasks:    api.NewTasks(e.rc, ns),
		Token:    token,
		Routes:   e.ctl.Routes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a)
	defer ts.Close()

	res, err := c.Enqueue(t.Context(), tasks.MediaExportArgs{ExportID: "e1", ArtistDID: "did:plc:a"})
	if err != nil {
		t.Fatal(err)
	}
	r := &control.Remote{BaseURL: ts.URL, Token: token}
	page, err := r.List(t.Context(), control.ListOptions{Queue: "bulk"})
	if err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != res.ID {
		t.Fatalf("List through the API = %+v, %v", page, err)
	}
	shown, err := r.Show(t.Context(), res.ID) // served by the API itself
	if err != nil || shown.ID != res.ID || shown.Type != "export:media" || shown.Queue != "bulk" || shown.State != "pending" {
		t.Errorf("Show through the API = %+v, %v", shown, err)
	}
	if _, err := r.Pause(t.Context(), "bulk"); err != nil {
		t.Fatal(err)
	}
	if qi, err := e.insp.GetQueueInfo(ns + ":bulk"); err != nil || !qi.Paused {
		t.Errorf("bulk not paused: %+v %v", qi, err)
	}

	anon := &control.Remote{BaseURL: ts.URL, Token: "wrong-token-wrong-token"}
	_, err = anon.Strikes(t.Context())
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Status != 401 {
		t.Errorf("wrong token: %v, want 401", err)
	}
}
