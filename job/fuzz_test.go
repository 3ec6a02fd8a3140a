package job_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/logging"
	"github.com/plyr-fm/plyrtasks/tasks"
)

// recorder registers, for every declared kind, a handler that records the
// args it was given.
type recorder struct{ got tasks.Args }

func record[A tasks.Args](r *job.Registry, rec *recorder) {
	job.Register(r, func(_ context.Context, j *job.Job[A]) error {
		a := j.Args
		rec.got = any(&a).(tasks.Args)
		return nil
	})
}

// registerAll registers a recording handler for every kind of tasks.All();
// TestFuzzRegistryCoversEveryKind fails when a declared kind is missing.
func registerAll(r *job.Registry, rec *recorder) {
	record[tasks.CopyrightScanArgs](r, rec)
	record[tasks.CopyrightSyncResolutionsArgs](r, rec)
	record[tasks.MediaExportArgs](r, rec)
	record[tasks.ATProtoSyncArgs](r, rec)
	record[tasks.TealScrobbleArgs](r, rec)
	record[tasks.AlbumListSyncArgs](r, rec)
	record[tasks.LikeArgs](r, rec)
	record[tasks.UnlikeArgs](r, rec)
	record[tasks.CommentCreateArgs](r, rec)
	record[tasks.CommentUpdateArgs](r, rec)
	record[tasks.CommentDeleteArgs](r, rec)
}

func TestFuzzRegistryCoversEveryKind(t *testing.T) {
	r := job.NewRegistry(tasks.All())
	registerAll(r, &recorder{})
	if got, want := r.Kinds(), tasks.All().Kinds(); !slices.Equal(got, want) {
		t.Fatalf("registerAll registers %v; the catalog declares %v: add the new kind to registerAll", got, want)
	}
}

// fuzzSeeds are real payloads and the nasty inputs, for every kind.
var fuzzSeeds = []string{
	`{"track_id":42,"audio_url":"https://cdn.example/a.mp3"}`,
	`{}`,
	`{"export_id":"01HZX3","artist_did":"did:plc:abc123"}`,
	`{"session_id":"s1","did":"did:plc:abc123"}`,
	`{"session_id":"s1","track_id":7,"track_title":"Song","artist_name":"Band","duration":215,"played_at":"2026-01-02T15:04:05Z"}`,
	`{"session_id":"s1","album_id":3}`,
	`{"session_id":"s1","like_id":9,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123"}`,
	`{"session_id":"s1","like_uri":"at://did:plc:abc/fm.plyr.like/3k2"}`,
	`{"session_id":"s1","comment_id":5,"subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123","text":"nice","timestamp_ms":61000}`,
	`{"session_id":"s1","comment_id":5,"comment_uri":"at://did:plc:abc/fm.plyr.comment/3k3","subject_uri":"at://did:plc:abc/fm.plyr.track/3k2","subject_cid":"bafyreiabc123","text":"edited","created_at":"2026-01-02T15:04:05Z"}`,
	`{"session_id":"s1","comment_uri":"at://did:plc:abc/fm.plyr.comment/3k3"}`,
	``, `null`, `[]`, `"x"`, `{`, `{}{}`, `{"track_id":1e309}`, `{"track_id":"NaN"}`, `{"track_id":{"a":[1,{"b":null}]}}`,
	"{\"session_id\":\"\xff\xfe\",\"did\":\"did:plc:\xc3\"}", `{"track_id":1,"track_id":2}`, `{"TRACK_ID":42}`,
	`{"unknown":true}`, `{"` + strings.Repeat("k", 70000) + `":1}`, `{"` + strings.Repeat("k", 60000) + `":1}`,
	`{"track_id":1,"audio_url":"https://x.example/` + strings.Repeat("%", 2000) + `"}`,
}

// FuzzRegistryHandler: the worker's registry, given any payload for any
// kind (declared or not), runs the handler with exactly the args
// tasks.Decode accepts, and otherwise fails for good: an error wrapping
// asynq.SkipRetry (archived at once, never retried) that says why in a
// bounded message. It never panics (no Recover here: a panic fails the
// fuzz).
func FuzzRegistryHandler(f *testing.F) {
	kinds := tasks.All().Kinds()
	for i := range kinds {
		for _, p := range fuzzSeeds {
			f.Add(uint8(i), "", []byte(p))
		}
	}
	f.Add(uint8(255), "nope:nothing", []byte(`{}`))
	f.Add(uint8(255), "", []byte(`{}`))
	f.Add(uint8(255), "copyright:scan\x00", []byte(fuzzSeeds[0]))
	catalog := tasks.All()
	rec := &recorder{}
	r := job.NewRegistry(catalog)
	registerAll(r, rec)
	bare := r.Handler()
	full := job.Chain(bare, job.DefaultMiddleware(logging.Discard(), nil)...)
	f.Fuzz(func(t *testing.T, ki uint8, other string, payload []byte) {
		kind := other
		if int(ki) < len(kinds) {
			kind = kinds[ki]
		}
		want, wantErr := catalog.Decode(kind, payload)
		for _, run := range []struct {
			name string
			h    job.HandlerFunc
		}{{"registry", bare}, {"worker chain", full}} {
			rec.got = nil
			task := &job.Task{Kind: kind, Payload: payload, ID: "t1", Queue: "plyr:default", MaxRetry: 5}
			err := run.h(context.Background(), task)
			if wantErr == nil {
				if err != nil || !reflect.DeepEqual(rec.got, want) {
					t.Fatalf("%s: %s %q: handler got %+v, err %v; want %+v", run.name, kind, payload, rec.got, err, want)
				}
				continue
			}
			if err == nil || rec.got != nil {
				t.Fatalf("%s: %s %q ran the handler with %+v (err %v); Decode refuses it: %v", run.name, kind, payload, rec.got, err, wantErr)
			}
			if !errors.Is(err, asynq.SkipRetry) || !job.IsPermanent(err) {
				t.Fatalf("%s: %s: error %v would be retried; malformed input must be archived (asynq.SkipRetry)", run.name, kind, err)
			}
			if !tasks.IsInvalid(err) && !job.ErrUnknownKind(err) {
				t.Fatalf("%s: %s: error %v is neither invalid input nor an unknown kind", run.name, kind, err)
			}
			if got := job.Outcome(context.Background(), task, err); got != job.OutcomeArchived {
				t.Fatalf("%s: outcome %s, want %s", run.name, got, job.OutcomeArchived)
			}
			// The error is the archived task's reason and a log line: it
			// says why, not the payload back.
			if n := len(err.Error()); n > 1024 {
				t.Fatalf("%s: %s: error message of %d bytes for a %d-byte payload: %.200s…", run.name, kind, n, len(payload), err.Error())
			}
		}
	})
}

// TestRegistryRefusalsAreBounded: FuzzRegistryHandler's seeds that
// archived tasks with the payload's 60000-byte key, or a 5000-byte kind,
// as their reason.
func TestRegistryRefusalsAreBounded(t *testing.T) {
	r := job.NewRegistry(tasks.All())
	registerAll(r, &recorder{})
	tests := []struct{ kind, payload, want string }{
		{"copyright:scan", `{"` + strings.Repeat("k", 60000) + `":1}`, "invalid payload: " + strings.Repeat("k", 64) + "…: unknown field"},
		{strings.Repeat("x", 5000), `{}`, `unknown task type "` + strings.Repeat("x", 128) + `…": no handler registered in this worker`},
	}
	for _, tt := range tests {
		err := r.Handler()(context.Background(), &job.Task{Kind: tt.kind, Payload: []byte(tt.payload), MaxRetry: 3})
		if err == nil || !job.IsPermanent(err) || !strings.HasPrefix(err.Error(), tt.want) || len(err.Error()) > 1024 {
			t.Errorf("kind %.20s…: error %.300q; want permanent, starting %.100q, at most 1024 bytes", tt.kind, err, tt.want)
		}
	}
}
