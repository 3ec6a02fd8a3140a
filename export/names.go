package export

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ManifestName is the zip entry listing the tracks that could not be
// included. Track entries never take this name.
const ManifestName = "MISSING_TRACKS.txt"

// MaxNameBytes bounds an entry name (255 is the common filesystem limit;
// the margin leaves room for an extraction directory's own name rules).
const MaxNameBytes = 200

// SafeName turns a track title into a file name stem that every common OS
// accepts: no path separators or other characters Windows reserves
// (<>:"/\|?*), no control or bidirectional-override characters, no leading
// dots or spaces (hidden files, "..") and no trailing dots or spaces
// (Windows strips them), not a reserved Windows device name (CON, NUL,
// COM1…), valid UTF-8 and at most max bytes. An empty result becomes
// "Untitled".
func SafeName(title string, max int) string {
	title = strings.ToValidUTF8(title, "_")
	var b strings.Builder
	space := false
	for _, r := range title {
		switch {
		case unicode.IsSpace(r): // before controls: a newline or tab separates words
			space = true
			continue
		case unicode.IsControl(r), isBidiControl(r), r == '\uFEFF':
			continue
		case strings.ContainsRune(`<>:"/\|?*`, r):
			r = '_'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	s := trimName(b.String())
	if len(s) > max {
		s = trimName(truncateUTF8(s, max))
	}
	if s == "" {
		return "Untitled"
	}
	if reservedWindowsName(s) {
		// "CON.live" is as reserved as "CON": mark the first segment.
		first, rest, _ := strings.Cut(s, ".")
		s = first + "_"
		if rest != "" {
			s += "." + rest
		}
		if len(s) > max {
			s = trimName(truncateUTF8(s, max))
		}
	}
	return s
}

// trimName drops leading dots and spaces and trailing dots and spaces.
func trimName(s string) string {
	s = strings.TrimLeft(s, ". ")
	return strings.TrimRight(s, ". ")
}

func isBidiControl(r rune) bool {
	return r == '\u200E' || r == '\u200F' || (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// reservedWindowsName reports whether the part of s before its first dot
// (and before trailing spaces) is a Windows device name.
func reservedWindowsName(s string) bool {
	first, _, _ := strings.Cut(s, ".")
	first = strings.ToUpper(strings.TrimRight(first, " "))
	switch first {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(first) >= 4 && (strings.HasPrefix(first, "COM") || strings.HasPrefix(first, "LPT")) {
		switch first[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return true
		}
	}
	return false
}

// safeExt returns a lower-case alphanumeric extension of at most 8
// characters: typ when usable, else the key's extension, else "bin".
func safeExt(typ, key string) string {
	for _, cand := range []string{typ, strings.TrimPrefix(path.Ext(key), ".")} {
		cand = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(cand), "."))
		if cand == "" || len(cand) > 8 {
			continue
		}
		if strings.IndexFunc(cand, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) >= 0 {
			continue
		}
		return cand
	}
	return "bin"
}

// namer hands out unique entry names in order: the first "Song.mp3", then
// "Song (2).mp3", "Song (3).mp3". Names compare case-insensitively, because
// Windows and macOS filesystems do.
type namer struct {
	used map[string]bool
}

func newNamer(reserved ...string) *namer {
	n := &namer{used: map[string]bool{}}
	for _, r := range reserved {
		n.used[strings.ToLower(r)] = true
	}
	return n
}

// name returns the entry name for a title and extension.
func (n *namer) name(title, ext string) string {
	// Room for " (NNNNNN)" and the extension within MaxNameBytes.
	stem := SafeName(title, MaxNameBytes-len(ext)-1-10)
	for i := 1; ; i++ {
		s := stem
		if i > 1 {
			s = fmt.Sprintf("%s (%d)", stem, i)
		}
		s += "." + ext
		if key := strings.ToLower(s); !n.used[key] {
			n.used[key] = true
			return s
		}
	}
}
