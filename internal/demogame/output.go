package demogame

import (
	"compress/zlib"
	"fmt"
	"net"
	"sync"
	"time"
)

// maxMailbox bounds the bytes other players may queue for one connection
// while it is busy. A client that falls this far behind is disconnected
// rather than buffered without limit.
const maxMailbox = 64 << 10

// output serialises every write to one client connection.
//
// The connection's own goroutine writes directly (write). Other goroutines
// (another player's "say") never wait for it: they drop their bytes in a
// bounded mailbox (notify) and deliver it themselves only if the write lock
// is free at that moment. Whoever holds the lock empties the mailbox before
// releasing it, and checks once more after releasing it, so a message is
// never stranded and a player flooding a million lines cannot stall the
// player who speaks to them.
type output struct {
	conn    net.Conn
	timeout time.Duration

	mu     sync.Mutex   // the write lock; guards everything below up to mailMu
	z      *zlib.Writer // non-nil while MCCP2 compresses the stream
	prompt []byte       // bytes that redraw the prompt after a notification
	err    error        // first write error; the connection is dead after it

	mailMu sync.Mutex
	mail   []byte
}

func newOutput(conn net.Conn, timeout time.Duration) *output {
	return &output{conn: conn, timeout: timeout}
}

// write sends p (and anything waiting in the mailbox first).
func (o *output) write(p []byte) error {
	o.mu.Lock()
	err := o.writeLocked(p)
	o.mu.Unlock()
	o.deliverMail()
	return err
}

// notify queues p from another goroutine and delivers it if nobody is
// writing right now. It never blocks on the connection owner.
func (o *output) notify(p []byte) {
	o.mailMu.Lock()
	if len(o.mail)+len(p) > maxMailbox {
		o.mailMu.Unlock()
		// Closing (not o.fail) keeps this goroutine from waiting on the
		// write lock; the owner's next write or read fails and it ends.
		o.conn.Close()
		return
	}
	o.mail = append(o.mail, p...)
	o.mailMu.Unlock()
	o.deliverMail()
}

// deliverMail empties the mailbox if the write lock is free. If it is not,
// the holder will see the mail: it empties the mailbox under the lock and
// calls deliverMail again after unlocking.
func (o *output) deliverMail() {
	for o.hasMail() && o.mu.TryLock() {
		_ = o.writeLocked(nil) // always takes the mail, even on a dead conn
		o.mu.Unlock()
	}
}

func (o *output) hasMail() bool {
	o.mailMu.Lock()
	defer o.mailMu.Unlock()
	return len(o.mail) > 0
}

func (o *output) takeMail() []byte {
	o.mailMu.Lock()
	defer o.mailMu.Unlock()
	if len(o.mail) == 0 {
		return nil
	}
	m := o.mail
	o.mail = nil
	return m
}

// writeLocked writes pending mail (followed by a fresh prompt, since the
// mail interrupted whatever the player was looking at) and then p.
func (o *output) writeLocked(p []byte) error {
	m := o.takeMail()
	if o.err != nil {
		return o.err
	}
	if m != nil {
		if err := o.send(append(m, o.prompt...)); err != nil {
			return err
		}
	}
	if len(p) == 0 {
		return nil
	}
	return o.send(p)
}

// send writes p through the compressor when MCCP2 is on.
func (o *output) send(p []byte) error {
	if err := o.conn.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil {
		return o.failLocked(err)
	}
	var err error
	if o.z != nil {
		if _, err = o.z.Write(p); err == nil {
			err = o.z.Flush()
		}
	} else {
		_, err = o.conn.Write(p)
	}
	if err != nil {
		return o.failLocked(fmt.Errorf("write to %s: %w", o.conn.RemoteAddr(), err))
	}
	return nil
}

// failLocked records the first error and closes the connection so its
// reader wakes up and the session ends. A partly written batch leaves the
// stream in an unknown state, so there is no recovering from a write error.
func (o *output) failLocked(err error) error {
	if o.err == nil {
		o.err = err
		o.conn.Close()
	}
	return o.err
}

// setPrompt sets the bytes written after a notification.
func (o *output) setPrompt(p []byte) {
	o.mu.Lock()
	o.prompt = append(o.prompt[:0], p...)
	o.mu.Unlock()
}

// startCompression sends IAC SB MCCP2 IAC SE uncompressed and compresses
// everything after it. BestSpeed: the game's output is highly repetitive,
// and the flood benchmark cares about throughput more than ratio.
func (o *output) startCompression() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.z != nil {
		return nil
	}
	if err := o.writeLocked([]byte{cmdIAC, cmdSB, optMCCP2, cmdIAC, cmdSE}); err != nil {
		return err
	}
	z, err := zlib.NewWriterLevel(o.conn, zlib.BestSpeed)
	if err != nil {
		return fmt.Errorf("start MCCP2: %w", err)
	}
	o.z = z
	return nil
}

// stopCompression ends the zlib stream cleanly, so the client returns to
// plain telnet (and sees a proper stream end rather than a torn one).
func (o *output) stopCompression() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.z == nil || o.err != nil {
		return o.err
	}
	if err := o.conn.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil {
		return o.failLocked(err)
	}
	err := o.z.Close()
	o.z = nil
	if err != nil {
		return o.failLocked(fmt.Errorf("end MCCP2 stream: %w", err))
	}
	return nil
}
