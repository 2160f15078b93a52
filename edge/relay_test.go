package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// relayTexts is text a game controls, as a worker stores it.
var relayTexts = []string{
	"plain line\n",
	`quotes " and \ backslashes \\" \u0041 literally`,
	"line\u2028separator\u2029paragraph",
	"invalid \xff\xfe UTF-8 \xc3 cut",
	"a real \ufffd replacement",
	"\x1b[1;31mred\x1b[0m \x1b]8;;https://x.test/\x1b\\link\x1b]8;;\x1b\\ \x1b]7701;{\"cmds\":[\"look\"]}\x1b\\",
	"</script><script>alert(1)</script> & <!-- -->",
	"controls \x01\x07\b\f\t\r\n\x7f\x1f",
	"emoji 🐉 and 中文 and é",
	strings.Repeat("y", 16<<10),
}

// todaysFrame is the frame the edge sent for an entry before frames were
// spliced from the stored bytes: the entry decoded in full, the frame
// encoded with encoding/json.
func todaysFrame(t *testing.T, id string, o store.Output) []byte {
	t.Helper()
	var v any
	switch {
	case o.Kind == store.OutText:
		v = outputFrame{Type: wire.TypeOutput, ID: id, Text: decodedText(t, o.Text), Prompt: o.Prompt}
	case o.Redacted:
		v = inputFrame{Type: wire.TypeInput, ID: id, Redacted: true}
	default:
		v = inputFrame{Type: wire.TypeInput, ID: id, Text: decodedText(t, o.Text)}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodedText is text as it comes out of the stored JSON.
func decodedText(t *testing.T, text string) string {
	b, _ := json.Marshal(text)
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func relayEntries() []store.Output {
	var outs []store.Output
	for _, text := range relayTexts {
		outs = append(outs,
			store.Output{Kind: store.OutText, Text: text},
			store.Output{Kind: store.OutText, Text: text, Prompt: true},
			store.Output{Kind: store.OutInput, Text: text, Viewer: "someone", InputSeq: 4},
			store.Output{Kind: store.OutInput, Text: text, Redacted: true})
	}
	return outs
}

// A text or input frame is spliced from the stored JSON of its entry (the
// text is not decoded and encoded again) and is byte for byte the frame
// the full decode and encode made, hostile text and all. Text with invalid
// UTF-8 (stored as `\ufffd`) is the one that still takes the slow path.
func TestRelayFramesAreByteForByteTodays(t *testing.T) {
	const id = "1700000000000-5"
	for _, o := range relayEntries() {
		o.Fence, o.Seq, o.Time = 7, 3, 1700000000000
		stored, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.ParseRelayMessage(id + " " + string(stored))
		if err != nil {
			t.Fatal(err)
		}
		if spliced := got.RawText != ""; spliced != utf8.ValidString(o.Text) {
			t.Errorf("%.60s: text kept as JSON %v", stored, spliced)
		}
		frame, err := encodeOutput(got, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := todaysFrame(t, id, o); string(frame) != string(want) {
			t.Errorf("frame of %.80q:\n got  %.200q\n want %.200q", stored, frame, want)
		}
	}
}

// readRaw reads the next text frame's bytes.
func (c *wsClient) readRaw() []byte {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if mt != websocket.TextMessage || !utf8.Valid(b) || !json.Valid(b) {
		c.t.Fatalf("frame %.200q: type %d, not valid UTF-8 JSON", b, mt)
	}
	return b
}

// Through Redis and a WebSocket, live and from the backlog: the browser
// gets today's frames, byte for byte, for hostile text; a malformed entry,
// published on the session's channel or stored in its stream, is counted,
// logged and skipped, and the output after it still arrives.
func TestHostileTextReachesTheBrowserByteForByte(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	live := e.hello(user, "demo", "")
	type sent struct {
		id string
		o  store.Output
	}
	var all []sent
	for _, o := range relayEntries() {
		all = append(all, sent{w.write(o), o})
	}
	for _, s := range all {
		if got, want := live.readRaw(), todaysFrame(t, s.id, s.o); string(got) != string(want) {
			t.Fatalf("live frame:\n got  %.200q\n want %.200q", got, want)
		}
	}

	ctx := context.Background()
	ch := e.st.OutputChannel(key)
	publish := func(msg string) {
		var err error
		if _, ok := e.rdb.(*redis.ClusterClient); ok {
			err = e.rdb.SPublish(ctx, ch, msg).Err()
		} else {
			err = e.rdb.Publish(ctx, ch, msg).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	bad0 := counterValue(t, e.srv.m.badOutput)
	publish("9999999999999-0 " + `{"k":"text","t":"cut`)
	publish("9999999999999-1 " + "{\"k\":\"text\",\"t\":\"\xff\"") // cut, and not UTF-8
	waitFor(t, "the malformed messages counted", func() bool { return counterValue(t, e.srv.m.badOutput) == bad0+2 })
	after := w.text("after\n")
	if got, want := live.readRaw(), todaysFrame(t, after, store.Output{Kind: store.OutText, Text: "after\n"}); string(got) != string(want) {
		t.Fatalf("frame after the malformed ones:\n got  %q\n want %q", got, want)
	}
	all = append(all, sent{after, store.Output{Kind: store.OutText, Text: "after\n"}})

	// One malformed entry in the stream itself, then one more good one.
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: ch, Values: []string{"v", `{"k":"text","t":"\u00"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	last := w.text("last\n")
	all = append(all, sent{last, store.Output{Kind: store.OutText, Text: "last\n"}})

	bad1 := counterValue(t, e.srv.m.badOutput)
	back := e.hello(user, "demo", "")
	for _, s := range all {
		for {
			got := back.readRaw()
			var f frame
			_ = json.Unmarshal(got, &f)
			if f.ID == "" {
				continue // the welcome
			}
			if want := todaysFrame(t, s.id, s.o); string(got) != string(want) {
				t.Fatalf("backlog frame:\n got  %.200q\n want %.200q", got, want)
			}
			break
		}
	}
	if got := counterValue(t, e.srv.m.badOutput); got != bad1+1 {
		t.Errorf("bad output counted %v after the backlog, want %v", got, bad1+1)
	}
}

// A backlog page is full when it read backlogPage entries, decodable or
// not: a page of 499 good entries and one undecodable one is followed by
// the next page, not taken for the end of the stream.
func TestBacklogPageWithAnUndecodableEntryIsFull(t *testing.T) {
	e := newEnv(t, nil)
	user := newUser()
	key := store.SessionKey{User: user, Game: "demo"}
	w := e.worker("w1", key)
	for i := range backlogPage - 1 {
		w.text(fmt.Sprintf("line %d\n", i))
	}
	ctx := context.Background()
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.st.OutputChannel(key), Values: []string{"v", `{"k":"text","t":"\u00"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.text(fmt.Sprintf("after %d\n", i))
	}
	c := e.hello(user, "demo", "")
	for want := 0; want < backlogPage+2; {
		var f frame
		if err := json.Unmarshal(c.readRaw(), &f); err != nil {
			t.Fatal(err)
		}
		if f.ID == "" {
			continue // the welcome
		}
		exp := fmt.Sprintf("line %d\n", want)
		if want >= backlogPage-1 {
			exp = fmt.Sprintf("after %d\n", want-(backlogPage-1))
		}
		if f.Text != exp {
			t.Fatalf("entry %d: %q, want %q", want, f.Text, exp)
		}
		want++
	}
}
