package rawjson

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestPlainWord checks the eight-bytes-at-once test against the byte table: every special byte in
// every position, among plain and random neighbours.
func TestPlainWord(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	check := func(w [8]byte) {
		want := true
		for _, c := range w {
			want = want && plainASCII[c]
		}
		if got := plainWord(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("plainWord(%q) = %v, want %v", w[:], got, want)
		}
	}
	for c := range 256 {
		for pos := range 8 {
			w := [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
			w[pos] = byte(c)
			check(w)
			for k := range w {
				if k != pos {
					w[k] = byte(r.IntN(256))
				}
			}
			check(w)
		}
	}
	for range 100000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		check(w)
		for k := range w {
			w[k] &= 0x7f
		}
		check(w)
	}
}

// TestTwoByteWord checks the four-characters-at-once test against utf8: words of two-byte
// characters, broken ones and random bytes.
func TestTwoByteWord(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(2, 2))
	check := func(w [8]byte) {
		want := true
		for k := 0; k < 8; k += 2 {
			c, size := utf8.DecodeRune(w[k:])
			want = want && size == 2 && c != utf8.RuneError
		}
		if got := twoByteWord(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("twoByteWord(%x) = %v, want %v", w[:], got, want)
		}
	}
	for range 200000 {
		var w [8]byte
		for k := 0; k < 8; k += 2 {
			utf8.EncodeRune(w[k:], rune(0x80+r.IntN(0x780)))
		}
		check(w)
		w[r.IntN(8)] = byte(r.IntN(256))
		check(w)
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		check(w)
	}
	for lead := range 256 {
		for cont := range 256 {
			w := [8]byte{0xD0, 0x9C, byte(lead), byte(cont), 0xD1, 0x8B, 0xC2, 0x80}
			check(w)
		}
	}
}
