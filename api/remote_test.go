package api

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/tasks"
)

func TestRemote(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	hs := httptest.NewServer(f.api)
	t.Cleanup(hs.Close)
	ctx := t.Context()
	rc := &Remote{BaseURL: hs.URL + "/", Token: testToken}

	res, err := rc.Enqueue(ctx, "copyright:scan", []byte(scan), tasks.Opts{Queue: "bulk", ProcessIn: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID == "" || res.Queue != "bulk" || res.State != "scheduled" || res.Outcome != "enqueued" {
		t.Fatalf("enqueue = %+v", res)
	}
	st, err := rc.Get(ctx, res.ID)
	if err != nil || st.State != "scheduled" || st.Type != "copyright:scan" || st.NextProcessAt == nil {
		t.Fatalf("get = %+v, %v", st, err)
	}

	_, err = rc.Enqueue(ctx, "copyright:scan", []byte(scan), tasks.Opts{Queue: "bulk"})
	if StatusCode(err) != 409 {
		t.Fatalf("duplicate: err %v", err)
	}
	if e := err.(*Error); e.ID != res.ID {
		t.Errorf("duplicate ID = %q, want %q", e.ID, res.ID)
	}

	_, err = rc.Enqueue(ctx, "copyright:scan", []byte(`{"track_id":0,"audio_url":"ftp://x"}`), tasks.Opts{})
	e, ok := err.(*Error)
	if !ok || e.Status != 400 || e.Field != "track_id" || len(e.Fields) != 2 || e.Fields[1].Field != "audio_url" {
		t.Fatalf("invalid payload: %#v", err)
	}

	cr, err := rc.Cancel(ctx, res.ID)
	if err != nil || cr.State != "deleted" {
		t.Fatalf("cancel = %+v, %v", cr, err)
	}
	if _, err := rc.Get(ctx, res.ID); StatusCode(err) != 404 {
		t.Fatalf("get after cancel: %v", err)
	}

	bad := &Remote{BaseURL: hs.URL, Token: "wrong"}
	if _, err := bad.Get(ctx, "x"); StatusCode(err) != 401 {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestValuesRoundTrip(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []tasks.Opts{
		{},
		{ProcessIn: 90 * time.Second, UniqueFor: time.Hour, MaxRetry: 3, Timeout: 2 * time.Minute, Retention: 24 * time.Hour, Queue: "bulk", TaskID: "x.1"},
		{ProcessAt: at, MaxRetry: tasks.NoRetry},
	}
	for _, o := range tests {
		got, err := ParseOptions(Values(o))
		if err != nil {
			t.Fatalf("ParseOptions(Values(%+v)): %v", o, err)
		}
		if !got.ProcessAt.Equal(o.ProcessAt) || !reflect.DeepEqual(withoutTime(got), withoutTime(o)) {
			t.Errorf("round trip %+v -> %+v", o, got)
		}
	}
}

func withoutTime(o tasks.Opts) tasks.Opts { o.ProcessAt = time.Time{}; return o }

func TestParseOptionsMessages(t *testing.T) {
	tests := []struct{ query, want string }{
		{"timeout=48h", "timeout: must be between 1s and 24h"},
		{"delay=9000h", "delay: must be between 0s and 8784h (366 days)"},
		{"unique_for=0s", "unique_for: must be between 1s and 720h (30 days)"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		_, err := ParseOptions(q)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: err %v, want %q", tt.query, err, tt.want)
		}
	}
}
