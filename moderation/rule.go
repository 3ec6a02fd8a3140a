package moderation

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rule decides whether a scan flags a track. It is applied by plyrtasks so
// the outcome does not depend on the moderation service's own flag.
type Rule struct {
	// ScoreThreshold flags a track whose dominant song covers at least this
	// share (percent) of the matched audio. Default 30
	// (COPYRIGHT_SCORE_THRESHOLD).
	ScoreThreshold float64
	// MixSongThreshold flags a track in which at least this many distinct
	// songs match over a sustained stretch: no single song dominates a DJ
	// mix. Default 3 (COPYRIGHT_MIX_SONG_THRESHOLD).
	MixSongThreshold int
}

// Rule defaults.
const (
	DefaultScoreThreshold   = 30
	DefaultMixSongThreshold = 3
)

func (r Rule) withDefaults() Rule {
	if r.ScoreThreshold <= 0 {
		r.ScoreThreshold = DefaultScoreThreshold
	}
	if r.MixSongThreshold <= 0 {
		r.MixSongThreshold = DefaultMixSongThreshold
	}
	return r
}

// Uploader is who uploaded the scanned track, for self-match suppression.
type Uploader struct {
	Handle      string // "someone.bsky.social"
	DisplayName string
}

// Verdict is the rule's decision on one scan.
type Verdict struct {
	Flagged bool
	// SelfMatch is true when a threshold was met but the dominant match is
	// the uploader's own music, so the track is not flagged.
	SelfMatch bool
	// DominantArtist is the artist of the dominant match, if any.
	DominantArtist string
	// Reason says why, in one line: for the labeler report and the task's
	// result.
	Reason string
}

// minSlug is the shortest slug self-match suppression compares: shorter
// names ("dj", "mc") would match far too much.
const minSlug = 4

// Apply decides on res: flagged when the dominant match percentage reaches
// ScoreThreshold or the sustained song count reaches MixSongThreshold,
// unless the dominant matched artist, slugified, contains or is contained
// in the uploader's handle (its first label) or display name, slugified,
// both at least four characters.
func (r Rule) Apply(res *ScanResult, u Uploader) Verdict {
	r = r.withDefaults()
	v := Verdict{DominantArtist: dominantArtist(res)}
	var why []string
	if res.DominantMatchPct >= r.ScoreThreshold {
		m := res.DominantMatch
		if m == "" {
			m = "unnamed song"
		}
		why = append(why, fmt.Sprintf("dominant match %s covers %g%% (threshold %g%%)", m, res.DominantMatchPct, r.ScoreThreshold))
	}
	if res.SustainedSongCount >= r.MixSongThreshold {
		why = append(why, fmt.Sprintf("%d sustained songs matched (mix threshold %d)", res.SustainedSongCount, r.MixSongThreshold))
	}
	if len(why) == 0 {
		v.Reason = fmt.Sprintf("below thresholds: dominant match %g%% < %g%%, %d sustained songs < %d",
			res.DominantMatchPct, r.ScoreThreshold, res.SustainedSongCount, r.MixSongThreshold)
		return v
	}
	if name, ok := selfMatch(v.DominantArtist, u); ok {
		v.SelfMatch = true
		v.Reason = fmt.Sprintf("not flagged: dominant artist %q is the uploader (%s); %s", v.DominantArtist, name, strings.Join(why, "; "))
		return v
	}
	v.Flagged = true
	v.Reason = "copyright scan: " + strings.Join(why, "; ")
	return v
}

// dominantArtist finds the dominant match's artist: the match whose
// "Artist - Title" is the dominant match, else the text before " - ".
func dominantArtist(res *ScanResult) string {
	d := strings.TrimSpace(res.DominantMatch)
	if d == "" {
		return ""
	}
	for _, m := range res.Matches {
		if m.Artist+" - "+m.Title == d {
			return m.Artist
		}
	}
	if artist, _, ok := strings.Cut(d, " - "); ok {
		return strings.TrimSpace(artist)
	}
	return d
}

// selfMatch reports whether artist is the uploader, and which name matched.
func selfMatch(artist string, u Uploader) (string, bool) {
	a := Slugify(artist)
	if utf8.RuneCountInString(a) < minSlug {
		return "", false
	}
	// A handle's first label is the name; the rest is the host
	// ("bsky.social"), which must not make "bsky" a self-match for everyone.
	handle, _, _ := strings.Cut(strings.TrimPrefix(u.Handle, "@"), ".")
	for _, c := range []struct{ what, name string }{{"handle", handle}, {"display name", u.DisplayName}} {
		s := Slugify(c.name)
		if utf8.RuneCountInString(s) < minSlug {
			continue
		}
		if strings.Contains(s, a) || strings.Contains(a, s) {
			return c.what + " " + c.name, true
		}
	}
	return "", false
}

// Slugify lowercases s and keeps only its letters and digits: "The Kid
// LAROI" and "thekidlaroi.bsky.social"'s first label compare equal.
func Slugify(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
