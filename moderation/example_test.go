package moderation_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
)

// A scan, the flag rule, and the report of a flag to the labeler. The
// moderation service here is a local stand-in that answers with a recorded
// AuDD match.
func ExampleClient() {
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(moderation.KeyHeader) != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/scan":
			_, _ = w.Write(moderationtest.Answer("dominant"))
		case "/internal/events":
			_, _ = w.Write([]byte(`{"id": 1}`))
		}
	}))
	defer service.Close()

	client, err := moderation.New(moderation.Options{
		URL: service.URL, // the labeler defaults to the same service and key
		Key: "secret",
		AudioURLs: moderation.GuardOptions{
			// A development host: plain http and loopback are accepted.
			DevHTTPHosts: []string{"127.0.0.1"},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	res, err := client.Scan(ctx, "http://127.0.0.1:9000/audio/42.mp3")
	if err != nil {
		fmt.Println("scan failed:", err, "retry:", moderation.Retryable(err))
		return
	}
	verdict := client.Rule().Apply(res, moderation.Uploader{Handle: "someone.bsky.social"})
	fmt.Println(verdict.Flagged, verdict.Reason)
	if verdict.Flagged {
		err := client.ReportFlag(ctx, moderation.FlagReport{
			SubjectURI: "at://did:plc:someone/fm.plyr.track/3k2abc",
			TrackID:    42,
			Reason:     verdict.Reason,
		})
		fmt.Println("reported:", err == nil)
	}

	// A URL off the allow-list never reaches the service.
	_, err = client.Scan(ctx, "https://files.example.net/a.mp3")
	fmt.Println(err, "| retry:", moderation.Retryable(err))
	// Output:
	// true copyright scan: dominant match Daft Punk - One More Time covers 80% (threshold 30%)
	// reported: true
	// audio_url: host "files.example.net" is not in AUDIO_URL_ALLOWED_HOSTS (https://files.example.net/a.mp3) | retry: false
}
