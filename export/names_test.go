package export

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeName(t *testing.T) {
	for _, tc := range []struct {
		title, want string
	}{
		{"Sunrise", "Sunrise"},
		{"a/b\\c", "a_b_c"},
		{`Q: "why?" <live> | *mix*`, `Q_ _why__ _live_ _ _mix_`},
		{"..", "Untitled"},
		{"../../etc/passwd", "_.._etc_passwd"},
		{"...And Justice", "And Justice"},
		{"trailing dots...", "trailing dots"},
		{"  spaced \t out  ", "spaced out"},
		{"line\nbreak\x00nul\x7fdel", "line breaknuldel"},
		{"rtl\u202Eevil\u2066x", "rtlevilx"},
		{"\uFEFFbom", "bom"},
		{"CON", "CON_"},
		{"con.live", "con_.live"},
		{"Com1", "Com1_"},
		{"LPT9 ", "LPT9_"},
		{"COM10", "COM10"},
		{"Console", "Console"},
		{"", "Untitled"},
		{"   ", "Untitled"},
		{"bad\xffutf8", "bad_utf8"},
		{"日本語のタイトル", "日本語のタイトル"},
		{"emoji 👩‍👩‍👧 family", "emoji 👩‍👩‍👧 family"},
	} {
		if got := SafeName(tc.title, 100); got != tc.want {
			t.Errorf("SafeName(%q) = %q, want %q", tc.title, got, tc.want)
		}
	}
}

func TestSafeNameLength(t *testing.T) {
	for _, title := range []string{strings.Repeat("a", 500), strings.Repeat("é", 300), strings.Repeat("ab ", 200) + "."} {
		got := SafeName(title, 50)
		if len(got) > 50 || !utf8.ValidString(got) || strings.HasSuffix(got, " ") || strings.HasSuffix(got, ".") {
			t.Errorf("SafeName(%d-byte title, 50) = %q (%d bytes)", len(title), got, len(got))
		}
	}
}

func TestNamer(t *testing.T) {
	n := newNamer(ManifestName)
	for _, tc := range []struct {
		title, ext, want string
	}{
		{"Song", "mp3", "Song.mp3"},
		{"Song", "mp3", "Song (2).mp3"},
		{"song", "mp3", "song (3).mp3"}, // case-insensitive filesystems
		{"Song (2)", "mp3", "Song (2) (2).mp3"},
		{"Song", "flac", "Song.flac"},
		{"MISSING_TRACKS", "txt", "MISSING_TRACKS (2).txt"},
		{"", "wav", "Untitled.wav"},
		{"  ", "wav", "Untitled (2).wav"},
	} {
		if got := n.name(tc.title, tc.ext); got != tc.want {
			t.Errorf("name(%q, %q) = %q, want %q", tc.title, tc.ext, got, tc.want)
		}
	}
	long := n.name(strings.Repeat("x", 1000), "flac")
	if len(long) > MaxNameBytes || !strings.HasSuffix(long, ".flac") {
		t.Errorf("long title → %q (%d bytes), want ≤ %d ending .flac", long, len(long), MaxNameBytes)
	}
}

func TestSafeExt(t *testing.T) {
	for _, tc := range []struct{ typ, key, want string }{
		{"mp3", "audio/x.mp3", "mp3"},
		{"FLAC", "", "flac"},
		{".wav", "", "wav"},
		{"", "audio/x.m4a", "m4a"},
		{"audio/mpeg", "audio/x", "bin"},
		{"../x", "a/b.ogg", "ogg"},
		{"", "", "bin"},
		{"averyverylongext", "", "bin"},
	} {
		if got := safeExt(tc.typ, tc.key); got != tc.want {
			t.Errorf("safeExt(%q, %q) = %q, want %q", tc.typ, tc.key, got, tc.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		p    Progress
		want float64
	}{
		{Progress{Phase: PhaseListing}, 0},
		{Progress{Phase: PhaseArchiving, BytesDone: 1, BytesTotal: 3}, 33.3},
		{Progress{Phase: PhaseArchiving, BytesDone: 999_999, BytesTotal: 1_000_000}, 99.9},
		{Progress{Phase: PhaseUploading, BytesDone: 10, BytesTotal: 10}, 99.9},
		{Progress{Phase: PhaseArchiving, TracksDone: 1, TracksTotal: 4}, 25},
		{Progress{Phase: PhaseDone}, 100},
	} {
		if got := tc.p.percent(); got != tc.want {
			t.Errorf("%+v.percent() = %v, want %v", tc.p, got, tc.want)
		}
	}
}
