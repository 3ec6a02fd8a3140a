package audiogen_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/plyr-fm/plyrtasks/export/audiogen"
)

func TestHeaders(t *testing.T) {
	for _, tc := range []struct {
		tone                    audiogen.Tone
		size                    int64
		magic, form, channelsAt string
	}{
		{audiogen.Tone{Seconds: 2}, 44 + 2*44100*2*2, "RIFF", "WAVE", ""},
		{audiogen.Tone{Format: audiogen.AIFF, Seconds: 1, SampleRate: 48000, Channels: 1}, 54 + 48000*2, "FORM", "AIFF", ""},
	} {
		t.Run(tc.tone.Format.Ext(), func(t *testing.T) {
			b, err := io.ReadAll(tc.tone.Reader())
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != tc.size || tc.tone.Size() != tc.size {
				t.Fatalf("read %d bytes, Size() %d; want %d", len(b), tc.tone.Size(), tc.size)
			}
			if string(b[0:4]) != tc.magic || string(b[8:12]) != tc.form {
				t.Fatalf("header %q…%q, want %s…%s", b[0:4], b[8:12], tc.magic, tc.form)
			}
			switch tc.tone.Format {
			case audiogen.WAV:
				if got := binary.LittleEndian.Uint32(b[4:8]); int64(got) != tc.size-8 {
					t.Errorf("RIFF size %d, want %d", got, tc.size-8)
				}
				if got := binary.LittleEndian.Uint32(b[40:44]); int64(got) != tc.size-44 {
					t.Errorf("data size %d, want %d", got, tc.size-44)
				}
			case audiogen.AIFF:
				if got := binary.BigEndian.Uint32(b[4:8]); int64(got) != tc.size-8 {
					t.Errorf("FORM size %d, want %d", got, tc.size-8)
				}
				// 48000 as an 80-bit extended float.
				if got := b[28:38]; !bytes.Equal(got, []byte{0x40, 0x0e, 0xbb, 0x80, 0, 0, 0, 0, 0, 0}) {
					t.Errorf("sample rate bytes % x", got)
				}
			}
			// Deterministic: a second stream is identical.
			again, _ := io.ReadAll(tc.tone.Reader())
			if !bytes.Equal(b, again) {
				t.Fatal("two streams of the same tone differ")
			}
		})
	}
}

func TestForSize(t *testing.T) {
	tone := audiogen.Tone{Freq: 330}.ForSize(3 << 20)
	if got := tone.Size(); got < 3<<20-4 || got > 3<<20 {
		t.Fatalf("ForSize(3 MiB).Size() = %d", got)
	}
}

func ExampleTone() {
	tone := audiogen.Tone{Freq: 440, Seconds: 1, SampleRate: 8000, Channels: 1}
	n, _ := io.Copy(io.Discard, tone.Reader())
	fmt.Println(tone.Format.Ext(), n, tone.Size())
	// Output: wav 16044 16044
}
