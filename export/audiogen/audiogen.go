// Package audiogen generates real, playable audio files — PCM sine tones as
// WAV or AIFF — deterministically and as streams, for tests, the dev seed
// and benchmarks. Nothing is held in memory but a small chunk.
package audiogen

import (
	"encoding/binary"
	"io"
	"math"
)

// Format is a container for 16-bit PCM.
type Format int

const (
	WAV  Format = iota // RIFF WAVE, little-endian samples
	AIFF               // AIFF, big-endian samples (a lossless "original")
)

// Ext is the format's file extension without the dot.
func (f Format) Ext() string {
	if f == AIFF {
		return "aiff"
	}
	return "wav"
}

// Tone describes a sine tone.
type Tone struct {
	// Format default WAV.
	Format Format
	// Freq in Hz; default 440.
	Freq float64
	// Seconds of audio; default 1.
	Seconds float64
	// SampleRate default 44100.
	SampleRate int
	// Channels default 2.
	Channels int
}

func (t Tone) norm() Tone {
	if t.Freq <= 0 {
		t.Freq = 440
	}
	if t.Seconds <= 0 {
		t.Seconds = 1
	}
	if t.SampleRate <= 0 {
		t.SampleRate = 44100
	}
	if t.Channels <= 0 {
		t.Channels = 2
	}
	return t
}

// frames is the number of sample frames.
func (t Tone) frames() int64 { return int64(t.Seconds * float64(t.SampleRate)) }

func (t Tone) dataSize() int64 { return t.frames() * int64(t.Channels) * 2 }

// headerSize is the container header before the samples.
func (t Tone) headerSize() int64 {
	if t.Format == AIFF {
		return 12 + 26 + 16 // FORM, COMM chunk, SSND chunk header with offset and block size
	}
	return 44
}

// Size is the file's exact size in bytes.
func (t Tone) Size() int64 { t = t.norm(); return t.headerSize() + t.dataSize() }

// ForSize returns seconds of audio that make a file of about size bytes.
func (t Tone) ForSize(size int64) Tone {
	t = t.norm()
	t.Seconds = float64(size-t.headerSize()) / float64(t.SampleRate*t.Channels*2)
	return t
}

// Reader streams the file.
func (t Tone) Reader() io.Reader {
	t = t.norm()
	return &toneReader{t: t, header: t.header(), frames: t.frames()}
}

func (t Tone) header() []byte {
	data := uint32(t.dataSize())
	if t.Format == AIFF {
		h := make([]byte, 0, t.headerSize())
		h = append(h, "FORM"...)
		h = binary.BigEndian.AppendUint32(h, uint32(t.headerSize()-8)+data)
		h = append(h, "AIFFCOMM"...)
		h = binary.BigEndian.AppendUint32(h, 18)
		h = binary.BigEndian.AppendUint16(h, uint16(t.Channels))
		h = binary.BigEndian.AppendUint32(h, uint32(t.frames()))
		h = binary.BigEndian.AppendUint16(h, 16)
		h = append(h, extended80(float64(t.SampleRate))...)
		h = append(h, "SSND"...)
		h = binary.BigEndian.AppendUint32(h, 8+data)
		h = binary.BigEndian.AppendUint32(h, 0) // offset
		h = binary.BigEndian.AppendUint32(h, 0) // block size
		return h
	}
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 36+data)
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, uint16(t.Channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(t.SampleRate))
	h = binary.LittleEndian.AppendUint32(h, uint32(t.SampleRate*t.Channels*2))
	h = binary.LittleEndian.AppendUint16(h, uint16(t.Channels*2))
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, data)
	return h
}

// extended80 encodes v as an IEEE 754 80-bit extended float (AIFF's
// sample rate field).
func extended80(v float64) []byte {
	out := make([]byte, 10)
	if v <= 0 {
		return out
	}
	frac, exp := math.Frexp(v) // v = frac × 2^exp, frac in [0.5, 1)
	binary.BigEndian.PutUint16(out, uint16(exp-1+16383))
	binary.BigEndian.PutUint64(out[2:], uint64(frac*(1<<64)))
	return out
}

type toneReader struct {
	t      Tone
	header []byte
	frame  int64 // next frame to generate
	frames int64
	pend   []byte // generated, not yet read
	buf    [4096]byte
	// The sine is a rotating phasor (two multiplies per sample instead of
	// a math.Sin), re-anchored exactly at every chunk so it cannot drift.
	cos, sin float64
}

func (r *toneReader) Read(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(r.header) > 0 {
			c := copy(p, r.header)
			r.header, p, n = r.header[c:], p[c:], n+c
			continue
		}
		if len(r.pend) == 0 {
			if r.frame >= r.frames {
				break
			}
			r.fill()
		}
		c := copy(p, r.pend)
		r.pend, p, n = r.pend[c:], p[c:], n+c
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// fill generates the next chunk of frames: a sine with a slow tremolo
// (constant within a chunk) so the file is not one repeating period.
func (r *toneReader) fill() {
	t := r.t
	frameBytes := t.Channels * 2
	out := r.buf[:0]
	w := 2 * math.Pi * t.Freq / float64(t.SampleRate)
	stepCos, stepSin := math.Cos(w), math.Sin(w)
	sec := float64(r.frame) / float64(t.SampleRate)
	r.sin, r.cos = math.Sincos(w * float64(r.frame))
	amp := (0.5 + 0.25*math.Sin(2*math.Pi*0.5*sec)) * 32767
	for len(out)+frameBytes <= len(r.buf) && r.frame < r.frames {
		v := uint16(int16(amp * r.sin))
		for range t.Channels {
			if t.Format == AIFF {
				out = binary.BigEndian.AppendUint16(out, v)
			} else {
				out = binary.LittleEndian.AppendUint16(out, v)
			}
		}
		r.cos, r.sin = r.cos*stepCos-r.sin*stepSin, r.sin*stepCos+r.cos*stepSin
		r.frame++
	}
	r.pend = out
}
