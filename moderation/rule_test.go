package moderation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/plyr-fm/plyrtasks/moderation"
	"github.com/plyr-fm/plyrtasks/moderation/moderationtest"
)

func TestRuleApply(t *testing.T) {
	nobody := moderation.Uploader{Handle: "someone.bsky.social", DisplayName: "Someone Else"}
	tests := []struct {
		name      string
		rule      moderation.Rule
		res       moderation.ScanResult
		uploader  moderation.Uploader
		flagged   bool
		selfMatch bool
		artist    string
		reason    string
	}{
		{name: "nothing matched", res: moderation.ScanResult{}, uploader: nobody,
			reason: "below thresholds: dominant match 0% < 30%, 0 sustained songs < 3"},
		{name: "dominant exactly at threshold", res: moderation.ScanResult{DominantMatchPct: 30, DominantMatch: "Daft Punk - Aerodynamic"},
			uploader: nobody, flagged: true, artist: "Daft Punk",
			reason: "copyright scan: dominant match Daft Punk - Aerodynamic covers 30% (threshold 30%)"},
		{name: "dominant just below threshold", res: moderation.ScanResult{DominantMatchPct: 29.9, DominantMatch: "Daft Punk - Aerodynamic"},
			uploader: nobody, artist: "Daft Punk"},
		{name: "custom threshold", rule: moderation.Rule{ScoreThreshold: 70}, res: moderation.ScanResult{DominantMatchPct: 69}, uploader: nobody},
		{name: "mix exactly at threshold", res: moderation.ScanResult{DominantMatchPct: 10, SustainedSongCount: 3}, uploader: nobody, flagged: true,
			reason: "copyright scan: 3 sustained songs matched (mix threshold 3)"},
		{name: "mix below threshold", res: moderation.ScanResult{DominantMatchPct: 10, SustainedSongCount: 2}, uploader: nobody},
		{name: "custom mix threshold", rule: moderation.Rule{MixSongThreshold: 5}, res: moderation.ScanResult{SustainedSongCount: 4}, uploader: nobody},
		{name: "both reasons", res: moderation.ScanResult{DominantMatchPct: 50, DominantMatch: "A - B", SustainedSongCount: 3}, uploader: nobody,
			flagged: true, artist: "A",
			reason: "copyright scan: dominant match A - B covers 50% (threshold 30%); 3 sustained songs matched (mix threshold 3)"},
		{name: "no dominant name still flags", res: moderation.ScanResult{DominantMatchPct: 90}, uploader: nobody, flagged: true},
		{name: "self-match by handle", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Night Tempo - Plastic Love"},
			uploader: moderation.Uploader{Handle: "nighttempo.bsky.social"}, selfMatch: true, artist: "Night Tempo"},
		{name: "self-match by display name", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Night Tempo - Plastic Love"},
			uploader: moderation.Uploader{Handle: "nt.example.com", DisplayName: "night tempo"}, selfMatch: true, artist: "Night Tempo"},
		{name: "uploader name contained in artist", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Night Tempo & Friends - Song"},
			uploader: moderation.Uploader{DisplayName: "Night Tempo"}, selfMatch: true, artist: "Night Tempo & Friends"},
		{name: "artist contained in uploader name", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Kiasmos - Blurred"},
			uploader: moderation.Uploader{DisplayName: "Kiasmos (official)"}, selfMatch: true, artist: "Kiasmos"},
		{name: "handle with @", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Kiasmos - Blurred"},
			uploader: moderation.Uploader{Handle: "@kiasmos.bsky.social"}, selfMatch: true, artist: "Kiasmos"},
		{name: "unicode names", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Björk - Jóga"},
			uploader: moderation.Uploader{DisplayName: "BJÖRK"}, selfMatch: true, artist: "Björk"},
		{name: "self-match suppresses a mix flag too", res: moderation.ScanResult{DominantMatchPct: 20, DominantMatch: "Kiasmos - Blurred", SustainedSongCount: 4},
			uploader: moderation.Uploader{DisplayName: "Kiasmos"}, selfMatch: true, artist: "Kiasmos"},
		{name: "short artist never self-matches", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "DJ - Track"},
			uploader: moderation.Uploader{Handle: "dj.bsky.social", DisplayName: "DJ"}, flagged: true, artist: "DJ"},
		{name: "short uploader names never self-match", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Abbas - Track"},
			uploader: moderation.Uploader{Handle: "ab.bsky.social", DisplayName: "abb"}, flagged: true, artist: "Abbas"},
		{name: "handle host is not a name", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Bsky Social Club - Anthem"},
			uploader: moderation.Uploader{Handle: "someone.bsky.social"}, flagged: true, artist: "Bsky Social Club"},
		{name: "different artist", res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Daft Punk - One More Time"},
			uploader: moderation.Uploader{Handle: "nighttempo.bsky.social", DisplayName: "Night Tempo"}, flagged: true, artist: "Daft Punk"},
		{name: "artist with ' - ' found through matches",
			res: moderation.ScanResult{DominantMatchPct: 95, DominantMatch: "Jay - Z - Song",
				Matches: []moderation.Match{{Artist: "Jay - Z", Title: "Song"}}},
			uploader: moderation.Uploader{DisplayName: "Jay-Z"}, selfMatch: true, artist: "Jay - Z"},
		{name: "below threshold self-match is just clean", res: moderation.ScanResult{DominantMatchPct: 10, DominantMatch: "Kiasmos - Blurred"},
			uploader: moderation.Uploader{DisplayName: "Kiasmos"}, artist: "Kiasmos"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.rule.Apply(&tt.res, tt.uploader)
			if v.Flagged != tt.flagged || v.SelfMatch != tt.selfMatch || v.DominantArtist != tt.artist {
				t.Errorf("Apply = %+v, want flagged %v self-match %v artist %q", v, tt.flagged, tt.selfMatch, tt.artist)
			}
			if tt.reason != "" && v.Reason != tt.reason {
				t.Errorf("Reason = %q, want %q", v.Reason, tt.reason)
			}
			if tt.selfMatch && !strings.HasPrefix(v.Reason, "not flagged: dominant artist") {
				t.Errorf("Reason = %q, want it to say the self-match", v.Reason)
			}
		})
	}
}

// TestRuleOnRecordedAnswers ties the rule to the recorded answers: our
// verdict, not the service's is_flagged, decides.
func TestRuleOnRecordedAnswers(t *testing.T) {
	tests := []struct {
		answer         string
		uploader       moderation.Uploader
		flagged        bool
		selfMatch      bool
		serviceFlagged bool
	}{
		{answer: "clean", flagged: false},
		{answer: "below_threshold", flagged: false, serviceFlagged: true},
		{answer: "dominant", flagged: true, serviceFlagged: true},
		{answer: "dj_mix", flagged: true, serviceFlagged: false},
		{answer: "self_match", uploader: moderation.Uploader{Handle: "nighttempo.bsky.social", DisplayName: "Night Tempo"},
			selfMatch: true, serviceFlagged: true},
		{answer: "self_match", uploader: moderation.Uploader{Handle: "someone.bsky.social"}, flagged: true, serviceFlagged: true},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			srv := moderationtest.NewServer(t, testKey)
			srv.SetAnswer(audioURL, moderationtest.Answer(tt.answer))
			c := newClient(t, srv)
			res, err := c.Scan(context.Background(), audioURL)
			if err != nil {
				t.Fatal(err)
			}
			v := c.Rule().Apply(res, tt.uploader)
			if v.Flagged != tt.flagged || v.SelfMatch != tt.selfMatch || res.ServiceFlagged != tt.serviceFlagged {
				t.Errorf("verdict %+v (service flagged %v), want flagged %v self-match %v service %v",
					v, res.ServiceFlagged, tt.flagged, tt.selfMatch, tt.serviceFlagged)
			}
		})
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"The Kid LAROI":       "thekidlaroi",
		"AC/DC":               "acdc",
		"  Sigur Rós  ":       "sigurrós",
		"deadmau5":            "deadmau5",
		"someone.bsky.social": "someonebskysocial",
		"":                    "",
		"!!!":                 "",
		"坂本龍一 (Ryuichi)":      "坂本龍一ryuichi",
	} {
		if got := moderation.Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}
