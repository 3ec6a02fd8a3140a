package config

import (
	"strings"
	"testing"
	"time"
)

func TestATProtoDefaultsAndCollections(t *testing.T) {
	c, err := LoadEnv(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	a := c.ATProto
	if a.PDSTimeout != 30*time.Second || a.TealStatusTTL != 10*time.Minute || a.TealDedupeWindow != time.Minute || a.PublicURL != "https://plyr.fm" {
		t.Fatalf("defaults = %+v", a)
	}
	want := Collections{TealPlay: "fm.teal.feed.play", TealStatus: "fm.teal.actor.status", Like: "fm.plyr.like",
		Comment: "fm.plyr.comment", List: "fm.plyr.list", Profile: "fm.plyr.actor.profile"}
	if got := a.Collections(); got != want {
		t.Fatalf("collections = %+v, want %+v", got, want)
	}
	// A zero ATProto (built in code) resolves to the same collections.
	if got := (ATProto{}).Collections(); got != want {
		t.Fatalf("zero-value collections = %+v", got)
	}
}

func TestATProtoPrefixAndOverrides(t *testing.T) {
	c, err := LoadEnv(map[string]string{
		"PLYR_COLLECTION_PREFIX": "fm.plyr.stg",
		"PLYR_LIST_COLLECTION":   "fm.plyr.custom.list",
		"TEAL_PLAY_COLLECTION":   "fm.teal.alpha.feed.play",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Collections{TealPlay: "fm.teal.alpha.feed.play", TealStatus: "fm.teal.actor.status", Like: "fm.plyr.stg.like",
		Comment: "fm.plyr.stg.comment", List: "fm.plyr.custom.list", Profile: "fm.plyr.stg.actor.profile"}
	if got := c.ATProto.Collections(); got != want {
		t.Fatalf("collections = %+v, want %+v", got, want)
	}
}

func TestATProtoValidateNamesTheVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TEAL_PLAY_COLLECTION": "play"}, `TEAL_PLAY_COLLECTION="play": must be an NSID`},
		{map[string]string{"PLYR_COLLECTION_PREFIX": "fm plyr"}, "PLYR_LIKE_COLLECTION (or PLYR_COLLECTION_PREFIX)"},
		{map[string]string{"PDS_TIMEOUT": "10m"}, "PDS_TIMEOUT=10m0s: must be between 1s and 5m0s"},
		{map[string]string{"TEAL_STATUS_TTL": "10s"}, "TEAL_STATUS_TTL=10s: must be between 1m0s and 24h0m0s"},
		{map[string]string{"TEAL_DEDUPE_WINDOW": "2h"}, "TEAL_DEDUPE_WINDOW=2h0m0s: must be between 1s and 1h0m0s"},
		{map[string]string{"PLYR_PUBLIC_URL": "plyr.fm"}, `PLYR_PUBLIC_URL="plyr.fm": must be an http(s) URL`},
		{map[string]string{"ATPROTO_OAUTH_CLIENT_KEY_ID": "k1"}, "ATPROTO_OAUTH_CLIENT_SECRET_KEY and ATPROTO_OAUTH_CLIENT_KEY_ID must be set together"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			_, err := LoadEnv(c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
