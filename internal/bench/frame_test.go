package bench

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/internal/wire"
)

// The flood's frame decoder gives what encoding/json gives, for every
// output frame the edge can write and for hand-written escapes it never
// writes; any other frame is left to encoding/json.
func TestDecodeOutputFrameAgreesWithEncodingJSON(t *testing.T) {
	texts := []string{"", "plain", "a\nb\r\n", "\x1b[1;31mred\x1b[0m", `quote " and \ back`, "<tag> & </tag>",
		"é日本\u2028\u2029", "😀", "\x00\x01\x1f", "bad \xff utf8 \xc3", strings.Repeat("x", 20000)}
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", " ", "\n", "\x1b", "\"", "\\", "/", "é", "😀", "\xff", "\t", "<", "\u2028", "\x00"}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(30) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		texts = append(texts, b.String())
	}
	var frames []string
	for i, text := range texts {
		enc, _ := json.Marshal(text)
		frames = append(frames,
			`{"type":"output","id":"1-`+string(rune('0'+i%10))+`","text":`+string(enc)+`,"prompt":false}`,
			`{"type":"output","id":"17-3","text":`+string(enc)+`,"prompt":true}`)
	}
	// Escapes encoding/json accepts but does not write, and near misses.
	for _, raw := range []string{`"\/\b\f\u00e9\u0041"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`,
		`"\uD83D\uDE00"`, `"\u12"`, `"\x"`, `"a`, "\"a\x01\"", `"\u00zz"`, `"\\"`} {
		frames = append(frames, `{"type":"output","id":"1-0","text":`+raw+`,"prompt":false}`)
	}
	frames = append(frames,
		`{"type":"output","id":"1-0","text":"x"}`,
		`{"type":"output","id":"1-0","text":"x","prompt":true,"extra":1}`,
		`{"type":"status","state":"connected"}`,
		`{"type":"output","id":"1\"0","text":"x","prompt":false}`,
		`{"type":"output","text":"x","id":"1-0","prompt":false}`,
		`{"type":"output","id":"1-0","text":"x","prompt":false} `)
	fast := 0
	for _, fr := range frames {
		var want wire.Frame
		werr := json.Unmarshal([]byte(fr), &want)
		got, ok := decodeOutputFrame([]byte(fr))
		if !ok {
			continue
		}
		fast++
		if werr != nil {
			t.Errorf("%.100q: decoded as %+v, encoding/json refuses it: %v", fr, got, werr)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.100q:\n got %+v\nwant %+v", fr, got, want)
		}
	}
	if fast < 2*len(texts) {
		t.Fatalf("only %d of %d edge frames took the fast path", fast, 2*len(texts))
	}
}

// BenchmarkDecodeOutputFrame: one 16 KiB flood frame (100-byte lines with
// an ANSI colour each), by encoding/json and by the fast path.
func BenchmarkDecodeOutputFrame(b *testing.B) {
	text := strings.Repeat("\x1b[32m"+strings.Repeat("x", 89)+"\x1b[0m\n", 160)
	enc, _ := json.Marshal(text)
	frame := []byte(`{"type":"output","id":"1700000000000-0","text":` + string(enc) + `,"prompt":false}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			var f wire.Frame
			if err := json.Unmarshal(frame, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if _, ok := decodeOutputFrame(frame); !ok {
				b.Fatal("not decoded")
			}
		}
	})
}
