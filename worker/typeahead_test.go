package worker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/store"
)

func newJudge() *typeAhead {
	return newTypeAhead(mustPrompt(store.DefaultPasswordPrompt), 5*time.Second)
}

// resolveWith feeds an echo state, then resolves.
func resolveWith(j *typeAhead, echo bool, now time.Time) []inputRecord {
	return append(j.setEcho(echo), j.resolve(now)...)
}

func line(text string, seq uint64, at time.Time) heldLine {
	return heldLine{text: text, viewer: "v1", seq: seq, at: at}
}

func TestTypeAheadNameAndPasswordBackToBack(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("Welcome!\nWhat is your name? ", t0)
	j.prompt()
	// Both lines arrive at once: the name answers the visible prompt, the
	// password is typed ahead of a prompt the game has not sent yet.
	if recs := j.typed(line("alice", 1, t0), t0); len(recs) != 1 || recs[0].secret || recs[0].text != "alice" {
		t.Fatalf("name: %+v", recs)
	}
	if recs := j.typed(line("hunter2", 2, t0), t0); len(recs) != 0 {
		t.Fatalf("password recorded before the game answered: %+v", recs)
	}
	// The game asks for the password (and turns echo on in the same read).
	j.text("Password: ", t0.Add(time.Millisecond))
	recs := resolveWith(j, true, t0.Add(time.Millisecond))
	if len(recs) != 1 || !recs[0].secret || recs[0].seq != 2 {
		t.Fatalf("password: %+v", recs)
	}
	// The same without echo, and with the game reading the password in
	// the same breath: the prompt's line is finished in the same read.
	j = newJudge()
	j.text("What is your name? ", t0)
	j.prompt()
	j.typed(line("alice", 1, t0), t0)
	j.typed(line("hunter2", 2, t0), t0)
	recs = j.text("Password: \nWelcome back!\n> ", t0.Add(time.Millisecond))
	if len(recs) != 1 || !recs[0].secret || recs[0].seq != 2 {
		t.Fatalf("password: %+v", recs)
	}
}

func TestTypeAheadPasswordPromptWithoutEcho(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("Enter your password: ", t0)
	// The prompt matches the pattern: no need to wait for it to settle.
	recs := j.typed(line("hunter2", 1, t0), t0)
	if len(recs) != 1 || !recs[0].secret {
		t.Fatalf("line at a password prompt without echo: %+v", recs)
	}
	// The next prompt is an ordinary one.
	j.text("\nWelcome back.\n> ", t0.Add(time.Second))
	recs = j.typed(line("look", 2, t0.Add(2*time.Second)), t0.Add(2*time.Second))
	if len(recs) != 1 || recs[0].secret || recs[0].text != "look" {
		t.Fatalf("ordinary command: %+v", recs)
	}
}

// A prompt split across reads is not judged by its first half.
func TestTypeAheadSplitPromptIsNotJudgedEarly(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("What is your name? ", t0)
	j.prompt()
	j.typed(line("alice", 1, t0), t0)
	j.typed(line("hunter2", 2, t0), t0)
	j.text("Pass", t0.Add(time.Millisecond))
	if recs := j.resolve(t0.Add(2 * time.Millisecond)); len(recs) != 0 {
		t.Fatalf("judged on half a prompt: %+v", recs)
	}
	j.text("word: ", t0.Add(3*time.Millisecond))
	recs := j.resolve(t0.Add(3 * time.Millisecond))
	if len(recs) != 1 || !recs[0].secret {
		t.Fatalf("split password prompt: %+v", recs)
	}
}

func TestTypeAheadCommandsResolvedByTheirPrompts(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("> ", t0)
	j.prompt()
	j.typed(line("n", 1, t0), t0)
	if recs := j.typed(line("e", 2, t0), t0); len(recs) != 0 {
		t.Fatalf("typed ahead recorded at once: %+v", recs)
	}
	// A prompt that only settles (no GA): judged after promptSettle.
	j.text("A road.\n> ", t0.Add(10*time.Millisecond))
	if recs := j.resolve(t0.Add(20 * time.Millisecond)); len(recs) != 0 {
		t.Fatalf("judged before the prompt settled: %+v", recs)
	}
	at, ok := j.next()
	if !ok || at != t0.Add(10*time.Millisecond+promptSettle) {
		t.Fatalf("next = %v %v", at, ok)
	}
	recs := j.resolve(at)
	if len(recs) != 1 || recs[0].secret || recs[0].text != "e" {
		t.Fatalf("settled prompt: %+v", recs)
	}
}

func TestTypeAheadHoldRunsOut(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("> ", t0)
	j.prompt()
	j.typed(line("say a", 1, t0), t0)
	j.typed(line("say b", 2, t0), t0)
	j.typed(line("say c", 3, t0), t0)
	// Output with no prompt at all, then nothing: after the hold, the line
	// is plain (the game answered and asked for nothing secret)...
	j.text("You say a\n", t0.Add(time.Millisecond))
	recs := j.resolve(t0.Add(6 * time.Second))
	if len(recs) != 2 || recs[0].secret || recs[1].secret {
		t.Fatalf("after the hold: %+v", recs)
	}
	// ...but a line the game never answered at all is redacted.
	j = newJudge()
	j.typed(line("hunter2", 1, t0), t0)
	if recs := j.resolve(t0.Add(6 * time.Second)); len(recs) != 1 || !recs[0].secret {
		t.Fatalf("unanswered line: %+v", recs)
	}
	// And so is one after a password prompt ending in a newline.
	j = newJudge()
	j.text("> ", t0)
	j.prompt()
	j.typed(line("x", 1, t0), t0)
	j.typed(line("hunter2", 2, t0), t0)
	if recs := j.text("Password:\n", t0.Add(time.Millisecond)); len(recs) != 1 || !recs[0].secret || recs[0].seq != 2 {
		t.Fatalf("after a password line: %+v", recs)
	}
}

func TestTypeAheadBoundedAndFlushedRedacted(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	var out []inputRecord
	for i := range maxHeld + 10 {
		out = append(out, j.typed(line("x", uint64(i+1), t0), t0)...)
	}
	if len(j.held) != maxHeld || len(out) != 10 || !out[0].secret {
		t.Fatalf("held %d, released %d", len(j.held), len(out))
	}
	if recs := j.flush(); len(recs) != maxHeld || !recs[0].secret || j.held != nil {
		t.Fatalf("flush: %d", len(recs))
	}
}

func TestGMCPStateBounded(t *testing.T) {
	g := newGMCPState(3, 1000)
	for _, p := range []string{"A", "B", "C"} {
		if drop, _ := g.put(p, 10); drop != nil {
			t.Fatalf("dropped %v under the bound", drop)
		}
	}
	g.put("A", 10) // A is now the most recent
	drop, first := g.put("D", 10)
	if len(drop) != 1 || drop[0] != "B" || !first {
		t.Fatalf("drop %v first %v, want [B] true", drop, first)
	}
	drop, first = g.put("E", 990)
	if len(drop) != 3 || first || g.order.Len() != 1 {
		t.Fatalf("byte bound: drop %v first %v, left %d", drop, first, g.order.Len())
	}
}

func TestSplitTextKeepsCharactersAndEscapes(t *testing.T) {
	s := "ab\x1b[1;31mé" // 'é' is 2 bytes
	for limit := 3; limit < len(s); limit++ {
		head, rest := splitText(s, limit)
		if head+rest != s || len(head) > limit || head == "" {
			t.Fatalf("limit %d: %q + %q", limit, head, rest)
		}
		if e := len(head) - 1; e >= 0 && head[e] >= 0xc0 {
			t.Fatalf("limit %d: cut inside a character: %q", limit, head)
		}
	}
	head, _ := splitText("xxxxxxxx\x1b[1;31m", 12)
	if head != "xxxxxxxx" {
		t.Fatalf("cut inside an escape: %q", head)
	}
	head, _ = splitText("aaaaaa\nbbbbbbbb", 10)
	if head != "aaaaaa\n" {
		t.Fatalf("did not cut at the newline: %q", head)
	}
}

func TestOutboxNeverMakesAnEntryAboveFlushBytes(t *testing.T) {
	var b outbox
	const flush = 1024
	big := make([]byte, 50*flush+17)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	b.push(store.Output{Kind: store.OutText, Text: "head"}, flush, 1<<30)
	b.push(store.Output{Kind: store.OutText, Text: string(big), Prompt: true}, flush, 1<<30)
	out, _, _ := b.take(1, "w", 1000, 1<<30, nil)
	got := ""
	for i, o := range out {
		if len(o.Text) > flush {
			t.Fatalf("entry %d holds %d bytes, over %d", i, len(o.Text), flush)
		}
		if o.Prompt != (i == len(out)-1) {
			t.Fatalf("entry %d prompt %v", i, o.Prompt)
		}
		got += o.Text
	}
	if got != "head"+string(big) {
		t.Fatal("text changed by splitting")
	}
}

// One session's share of a round is bounded in bytes.
func TestOutboxTakeBoundedInBytes(t *testing.T) {
	var b outbox
	for range 10 {
		b.push(store.Output{Kind: store.OutText, Text: string(make([]byte, 1000))}, 1000, 1<<30)
	}
	out, _, more := b.take(1, "w", 1000, 3000, nil)
	if len(out) != 2 || !more {
		t.Fatalf("took %d entries (more %v) with a 3000-byte share", len(out), more)
	}
	// At least one entry even when it alone is over the share.
	out, _, _ = b.take(1, "w", 1000, 10, nil)
	if len(out) != 1 {
		t.Fatalf("took %d with a tiny share", len(out))
	}
}

// Output lost while Redis is away moves into a gap entry that waits in the
// outbox; if the lease goes before it is written, its bytes are lost too
// and belong in the final count.
func TestOutboxCountsUnwrittenGapsWhenClosed(t *testing.T) {
	var b outbox
	const limit = 2048
	for range 100 {
		b.push(store.Output{Kind: store.OutText, Text: string(make([]byte, 100))}, 100, limit)
	}
	lost := b.lost
	if lost == 0 {
		t.Fatal("nothing dropped")
	}
	taken, _, _ := b.take(1, "w", 5, 1<<30, nil) // a write that fails
	if taken[0].Kind != store.OutGap {
		t.Fatalf("first taken %+v", taken[0])
	}
	b.giveBack(taken, limit)
	b.close()
	if got, min := b.discardedBytes(), lost; got < min {
		t.Fatalf("discarded %d, want at least the %d bytes the gap entry stood for", got, min)
	}
}

// Found in review: a name prompt and the password prompt after it can
// share one finished line ("By what name? Password: "), and the line that
// answered the password prompt is then the second held one, not the first.
// Every line held when a password prompt shows is redacted.
func TestTypeAheadPasswordPromptRedactsEveryHeldLine(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("By what name? ", t0) // no GA, not settled yet
	j.typed(line("alice", 1, t0), t0)
	j.typed(line("hunter2", 2, t0), t0)
	recs := j.text("Password: \nWelcome back!\n> ", t0.Add(10*time.Millisecond))
	recs = append(recs, j.resolve(t0.Add(time.Second))...)
	if len(recs) != 2 || !recs[0].secret || !recs[1].secret {
		t.Fatalf("records %+v: the password must not be plain", recs)
	}
}

// Found in review: echo on and off again within one read, at a prompt the
// pattern does not know ("Senha: "). The judge sees echo in stream order.
func TestTypeAheadEchoIsJudgedInStreamOrder(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("Nome? ", t0)
	j.prompt()
	j.typed(line("alice", 1, t0), t0)
	j.typed(line("hunter2", 2, t0), t0)
	j.text("Senha: ", t0.Add(time.Millisecond))
	recs := j.setEcho(true)
	j.setEcho(false)
	recs = append(recs, j.text("\nBem-vindo\n> ", t0.Add(time.Millisecond))...)
	recs = append(recs, j.resolve(t0.Add(time.Second))...)
	if len(recs) != 1 || !recs[0].secret || recs[0].seq != 2 {
		t.Fatalf("records %+v", recs)
	}
}

// Found in review: a password prompt that ends in a newline, with no GA.
func TestTypeAheadPasswordPromptEndingInNewline(t *testing.T) {
	j := newJudge()
	t0 := time.Unix(1000, 0)
	j.text("Enter your password:\n", t0)
	recs := j.typed(line("hunter2", 1, t0.Add(time.Second)), t0.Add(time.Second))
	if len(recs) != 1 || !recs[0].secret {
		t.Fatalf("records %+v", recs)
	}
	// Typed ahead of it, then the game moves on before the hold ends.
	j = newJudge()
	j.text("> ", t0)
	j.prompt()
	j.typed(line("x", 1, t0), t0)
	j.typed(line("hunter2", 2, t0), t0)
	recs = j.text("Enter your password:\n", t0.Add(time.Millisecond))
	recs = append(recs, j.text("Welcome!\n", t0.Add(2*time.Millisecond))...)
	recs = append(recs, j.resolve(t0.Add(6*time.Second))...)
	for _, r := range recs {
		if r.seq == 2 && !r.secret {
			t.Fatalf("the password was recorded plain: %+v", recs)
		}
	}
}

// Found in review: an entry that named GMCP packages to forget, dropped
// while Redis was away, must not leave them in Redis for good: the next
// entry written names them.
func TestOutboxCarriesGMCPDropsOfDroppedEntries(t *testing.T) {
	var b outbox
	b.push(store.Output{Kind: store.OutGMCP, Package: "New", Data: []byte(`{}`), DropGMCP: []string{"Old"}}, 100, 1<<30)
	for i := range 50 { // no text to drop: the oldest of anything goes
		b.push(store.Output{Kind: store.OutGMCP, Package: fmt.Sprintf("P%d", i), Data: []byte(`{"x":1}`)}, 100, 1000)
	}
	taken, _, _ := b.take(1, "w", 1000, 1<<30, nil)
	for _, o := range taken {
		if o.Package == "New" {
			t.Fatal("the entry survived the trim: the test proves nothing")
		}
		for _, p := range o.DropGMCP {
			if p == "Old" {
				return
			}
		}
	}
	t.Fatalf("no entry carries the dropped entry's DropGMCP: %d taken", len(taken))
}

// The same for MSDP variables to forget (DropMSDP).
func TestOutboxCarriesMSDPDropsOfDroppedEntries(t *testing.T) {
	var b outbox
	b.push(store.Output{Kind: store.OutMSDP, Package: "NEW", Data: []byte(`"1"`), DropMSDP: []string{"OLD"}}, 100, 1<<30)
	for i := range 50 {
		b.push(store.Output{Kind: store.OutMSDP, Package: fmt.Sprintf("V%d", i), Data: []byte(`"12345"`)}, 100, 1000)
	}
	taken, _, _ := b.take(1, "w", 1000, 1<<30, nil)
	for _, o := range taken {
		if o.Package == "NEW" {
			t.Fatal("the entry survived the trim: the test proves nothing")
		}
		for _, p := range o.DropMSDP {
			if p == "OLD" {
				return
			}
		}
	}
	t.Fatalf("no entry carries the dropped entry's DropMSDP: %d taken", len(taken))
}

// Found in review: a write in flight when the lease goes, that then fails,
// lost what it carried without counting it, and left waiters hanging.
func TestOutboxGiveBackAfterCloseCountsAndWakes(t *testing.T) {
	var b outbox
	b.push(store.Output{Kind: store.OutText, Text: string(make([]byte, 1000))}, 4096, 1<<30)
	taken, _, _ := b.take(1, "w", 10, 1<<30, nil)
	b.close()
	ch := b.drained()
	if ch == nil {
		t.Fatal("no waiter while a write is in flight")
	}
	b.giveBack(taken, 1<<30)
	select {
	case <-ch:
	default:
		t.Fatal("waiter not woken")
	}
	if got := b.discardedBytes(); got < 1000 {
		t.Fatalf("discarded %d, want the 1000 bytes in flight", got)
	}
}

// A flood with nothing typed ahead: the type-ahead check must cost little
// per line (the prompt pattern only matters to lines held).
func BenchmarkTypeAheadFlood(b *testing.B) {
	ta := newJudge()
	var block strings.Builder
	for i := range 64 {
		fmt.Fprintf(&block, "\x1b[1;32mflood line %05d of the demo game, a hundred bytes or so of room text here\x1b[0m\n", i)
	}
	text := block.String()
	now := time.Now()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		ta.text(text, now)
	}
}

// A game without prompts that prints each line back (an echo server, a
// game repeating commands) settles the oldest held line then, plain: its
// record does not wait out the hold. Only an exact whole line counts, only
// for the oldest line, and never once a secret was hinted at.
func TestTypeAheadEchoedLineIsRecordedAtOnce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	j := newJudge()
	j.text("Welcome to the echo server.\n", t0)
	if recs := j.typed(line("cost 1 2", 1, at(1)), at(1)); len(recs) != 0 {
		t.Fatalf("typed ahead: recorded at once: %+v", recs)
	}
	recs := j.text("cost 1 2\r\n", at(2))
	if len(recs) != 1 || recs[0].secret || recs[0].seq != 1 || recs[0].text != "cost 1 2" {
		t.Fatalf("echoed line: %+v, want its record, plain", recs)
	}
	if _, ok := j.next(); ok {
		t.Error("a line is still held")
	}

	// Two held: the second's echo first settles nothing; the first's then
	// settles the first only.
	j.typed(line("north", 2, at(3)), at(3))
	j.typed(line("south", 3, at(3)), at(3))
	if recs := j.text("south\n", at(4)); len(recs) != 0 {
		t.Fatalf("the second line's echo settled %+v", recs)
	}
	if recs := j.text("\x1b[1mnorth\x1b[0m  \n", at(5)); len(recs) != 1 || recs[0].seq != 2 || recs[0].secret {
		t.Fatalf("the first line's echo (with colour): %+v", recs)
	}
	// Not a whole line of its own.
	if recs := j.text("> south\nYou say: south\n", at(6)); len(recs) != 0 {
		t.Fatalf("a line that only contains the text settled %+v", recs)
	}
	if recs := j.resolve(at(6 + 5000)); len(recs) != 1 || recs[0].seq != 3 || recs[0].secret {
		t.Fatalf("after the hold: %+v", recs)
	}

	// A password prompt since the line was typed: the echo settles
	// nothing, and the hold records it redacted.
	j = newJudge()
	j.text("Welcome.\n", t0)
	j.typed(line("hunter2", 4, at(1)), at(1))
	j.text("Password: ", at(2))
	if recs := j.text("hunter2\n", at(3)); len(recs) != 0 {
		t.Fatalf("echo after a password prompt settled %+v", recs)
	}
	if recs := j.resolve(at(3 + 5000)); len(recs) != 1 || !recs[0].secret {
		t.Fatalf("after the hold: %+v, want it redacted", recs)
	}

}
