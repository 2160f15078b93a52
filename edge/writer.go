package edge

import (
	"errors"
	"fmt"

	"github.com/trellis-mud/trellis/internal/wire"
	"github.com/trellis-mud/trellis/store"
)

// A flush's frames go to the transport in batches of at most these (one
// write(2) each on a WebSocket): a backlog page or a burst of live output
// costs a few system calls instead of one per frame, and a batch never
// holds more than a cork buffer's worth.
const (
	maxBatchFrames = 64
	maxBatchBytes  = 64 << 10
)

// writer state, owned by the running writer goroutine and kept between
// runs in client.w.
type writer struct {
	c        *client
	attached bool
	sess     *session
	lastID   string
	fence    int64
	seq      uint64

	// Frames written and not yet handed to the transport (see commit).
	// The state above moves as they are written: if the transport fails,
	// the connection ends and the state goes with it.
	pending      [][]byte
	pendingBytes int
	inline       [4][]byte // pending's array while batches are small
}

// writeLoop is one run of the writer (started by poke): it sends what is
// queued until nothing is, then returns, leaving its state in c.w for the
// next run. The run that sees the connection closing sends the close and
// is the last.
func (c *client) writeLoop() {
	defer c.writers.Done()
	w := &c.w
	for {
		c.qmu.Lock()
		closing := c.closing()
		if !c.dirty && !closing {
			// Under qmu, so a poke after this starts a new run.
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.dirty = false
		ping := c.pingDue
		c.pingDue = false
		c.qmu.Unlock()
		if closing {
			w.finish()
			return
		}
		if ping {
			if err := c.t.Ping(); err != nil {
				w.abort(err)
				return
			}
		}
		err := w.flush()
		if err == nil {
			err = w.commit()
		}
		if err != nil {
			if c.closing() {
				w.finish()
				return
			}
			w.abort(err)
			return
		}
	}
}

// ended marks the writer done for good: no run starts again, and stop and
// the reader's drain may go on.
func (w *writer) ended() {
	c := w.c
	c.qmu.Lock()
	c.finished = true
	c.live = nil // nobody will send it
	c.qmu.Unlock()
	close(c.written)
}

// abort ends a connection whose writes fail: the browser is gone.
func (w *writer) abort(err error) {
	w.c.logger().Debug("write failed", "err", err)
	w.c.closeWith(disconnectGone)
	_ = w.c.t.Close(disconnectGone) // fails at once, and drops the socket
	w.ended()
}

// finish sends what is pending, the queued error frames and the close
// frame (the transport then gives the browser a grace to answer it).
func (w *writer) finish() {
	c := w.c
	c.qmu.Lock()
	frames := c.frames
	c.frames = nil
	c.qmu.Unlock()
	for _, f := range frames {
		if err := w.write(f); err != nil {
			break
		}
	}
	if err := w.commit(); err != nil {
		w.c.logger().Debug("write failed", "err", err)
	}
	_ = c.t.Close(c.disc)
	w.ended()
}

// write adds a frame to the batch, handing the batch to the transport when
// it is full.
func (w *writer) write(b []byte) error {
	w.pending = append(w.pending, b)
	w.pendingBytes += len(b)
	if len(w.pending) >= maxBatchFrames || w.pendingBytes >= maxBatchBytes {
		return w.commit()
	}
	return nil
}

// commit hands the pending frames to the transport.
func (w *writer) commit() error {
	n := len(w.pending)
	if n == 0 {
		return nil
	}
	var err error
	if n == 1 {
		err = w.c.t.Write(w.pending[0])
	} else {
		err = w.c.t.WriteMany(w.pending...)
	}
	clear(w.pending)
	w.pending, w.pendingBytes = w.pending[:0], 0
	if cap(w.pending) > len(w.inline) {
		w.pending = w.inline[:0] // an idle connection keeps no big array
	}
	if err != nil {
		return err
	}
	w.c.srv.m.framesOut.Add(float64(n))
	return nil
}

var errClosing = errors.New("connection closing")

// flush sends whatever is queued: error frames first, then the attach,
// then a resync, then live output.
func (w *writer) flush() error {
	c := w.c
	c.qmu.Lock()
	frames := c.frames
	c.frames = nil
	job := c.attachTo
	c.attachTo = nil
	resync := c.resync
	c.resync = false
	var live []store.Output
	var gone int64
	if w.attached || job != nil {
		live = c.live
		c.live = nil
		gone = c.leaseGone
		c.leaseGone = 0
	}
	c.qmu.Unlock()

	for _, f := range frames {
		if err := w.write(f); err != nil {
			return err
		}
	}
	if job != nil {
		if err := w.attach(job); err != nil {
			return err
		}
		resync = false
	}
	if !w.attached {
		return nil
	}
	if resync {
		if err := w.readFrom("reconnect"); err != nil {
			return err
		}
	}
	for _, o := range live {
		if c.closing() {
			return errClosing
		}
		if err := w.relay(o); err != nil {
			return err
		}
	}
	if gone > 0 {
		// A dead lease's worker wrote its last record before the lease
		// went, so the stream read after the watchdog saw it gone holds
		// every record it made: what is still outstanding now is lost.
		if err := w.readFrom("input_check"); err != nil {
			return err
		}
		if n := c.in.lostBelow(gone + 1); n > 0 {
			return w.reportLost(n, lostStopped)
		}
	}
	return nil
}

// reportLost tells the player n lines were lost, right after the output
// that showed it.
func (w *writer) reportLost(n int, why string) error {
	c := w.c
	if why == lostStopped && w.sess.ended() {
		// Typed after the game hung up, before the edge forgot the route.
		why = lostEnded
	}
	c.srv.m.inputLost.WithLabelValues(why).Add(float64(n))
	c.srv.m.errors.WithLabelValues(wire.ErrInputLost).Inc()
	c.logger().Info("input lost", "lines", n, "why", why)
	return w.write(encodeError(wire.ErrInputLost, inputLostMessage(n, why)))
}

// attach sends the welcome, any gap, the GMCP state, the MSDP state and
// the backlog.
func (w *writer) attach(job *attachJob) error {
	c := w.c
	st := c.srv.st
	key := job.sess.key
	page, err := st.RelayBacklog(c.ctx, key, job.resume, backlogPage)
	if err != nil {
		c.internal("read backlog", err)
		return errClosing
	}
	w.skipped(page)
	reset := job.unplaced || page.Reset
	if err := w.write(encodeWelcome(job.user, job.game, job.resume != "" && !page.Gap && !reset)); err != nil {
		return err
	}
	switch {
	case reset:
		err = w.write(encodeResetGap("your saved place in the output was not found; what follows is the kept output from its start"))
	case page.Gap:
		err = w.write(encodeGap("", "some earlier output is no longer kept"))
	}
	if err != nil {
		return err
	}
	state, err := st.GMCPState(c.ctx, key)
	if err != nil {
		c.srv.m.redisErrors.Inc()
		c.logger().Warn("read gmcp state failed", "err", err)
	}
	for _, o := range state {
		if err := w.send(o, false); err != nil {
			return err
		}
	}
	msdp, err := st.MSDPState(c.ctx, key)
	if err != nil {
		c.srv.m.redisErrors.Inc()
		c.logger().Warn("read msdp state failed", "err", err)
	}
	for _, o := range msdp {
		if err := w.send(o, false); err != nil {
			return err
		}
	}
	// After a reset the position is forgotten: the ids that follow may
	// sort before it, and every one must go out.
	w.sess, w.lastID, w.attached = job.sess, job.resume, true
	if reset {
		w.lastID = ""
	}
	w.placeAt(page.At)
	if err := w.sendAll(page.Entries); err != nil {
		return err
	}
	// A page is full when it read backlogPage entries, decodable or not.
	if len(page.Entries)+page.Skipped == backlogPage {
		return w.readFrom("")
	}
	return nil
}

// readFrom re-reads the stream after the last id sent and sends what it
// finds. cause names why, for metrics ("" for the rest of a backlog).
func (w *writer) readFrom(cause string) error {
	c := w.c
	if cause != "" {
		c.srv.m.resyncs.WithLabelValues(cause).Inc()
	}
	for range backlogPages {
		page, err := c.srv.st.RelayBacklog(c.ctx, w.sess.key, w.lastID, backlogPage)
		if err != nil {
			c.internal("re-read output", err)
			return errClosing
		}
		w.skipped(page)
		if page.Reset {
			return w.lostPosition(page.Entries)
		}
		if page.Gap {
			if err := w.write(encodeGap("", "some output is missing: it is older than the kept backlog")); err != nil {
				return err
			}
		}
		w.placeAt(page.At)
		if err := w.sendAll(page.Entries); err != nil {
			return err
		}
		if len(page.Entries)+page.Skipped < backlogPage {
			return nil
		}
	}
	return nil
}

// lostPosition handles a re-read that found the last id sent newer than
// the stream's newest entry. That id was sent on this connection, so the
// stream held it once: it lost its newest entries (a failover to a replica
// that was behind, a restart that lost the last writes) or started again.
// What it holds the browser has seen, in the common case, and sending the
// whole backlog again to every viewer after a Redis failover would flood
// them with repeats; so the writer only forgets the position, placing
// itself at the stream's newest entry, so that entries written from now
// on go out even if their ids sort before the old one. The browser is told
// (output it was never sent may be gone with the stream) and forgets its
// resume point too.
func (w *writer) lostPosition(fromStart []store.Output) error {
	c := w.c
	c.srv.m.resyncs.WithLabelValues("position_lost").Inc()
	newest := ""
	if n := len(fromStart); n > 0 && n < backlogPage {
		newest = fromStart[n-1].ID
	} else if n > 0 {
		id, err := c.srv.st.LastOutputID(c.ctx, w.sess.key)
		if err != nil {
			c.internal("read the newest output id", err)
			return errClosing
		}
		newest = id
	}
	c.logger().Warn("the output stream no longer holds the last entry sent; resuming after its newest",
		"last_sent", w.lastID, "newest", newest)
	w.lastID = newest
	w.sess.rewind(newest)
	return w.write(encodeResetGap("the server lost some recent output; some of it may not have reached you"))
}

// skipped counts and logs the entries of a read that could not be decoded.
func (w *writer) skipped(page store.OutputPage) {
	if page.Skipped > 0 {
		w.c.srv.m.badOutput.Add(float64(page.Skipped))
		w.c.logger().Warn("skipping undecodable output entries", "entries", page.Skipped)
	}
}

func (w *writer) sendAll(entries []store.Output) error {
	for _, o := range entries {
		if w.c.closing() {
			return errClosing
		}
		w.sess.observe(o)
		if err := w.send(o, true); err != nil {
			return err
		}
	}
	return nil
}

// relay sends a live entry unless it was already sent; a hole in the
// sequence numbers means the live path lost entries, and the stream has
// them.
func (w *writer) relay(o store.Output) error {
	if o.ID == "" || store.CompareIDs(o.ID, w.lastID) <= 0 {
		return nil
	}
	// A hole within a fence, or a new fence (a new owner numbers from 1)
	// whose first entries never arrived.
	sameFenceHole := o.Fence == w.fence && w.seq > 0 && o.Seq > w.seq+1
	newFenceHole := w.fence > 0 && o.Fence > w.fence && o.Seq > 1
	if o.Seq > 0 && (sameFenceHole || newFenceHole) {
		if err := w.readFrom("seq_hole"); err != nil {
			return err
		}
		if store.CompareIDs(o.ID, w.lastID) <= 0 {
			return nil
		}
	}
	return w.send(o, true)
}

func (w *writer) send(o store.Output, withID bool) error {
	if withID {
		if n := w.missing(o); n > 0 {
			// The stream does not have them either: Redis lost entries it
			// had acknowledged (a failover to a replica that was behind),
			// or refused them (the worker reports those with a gap entry
			// later, after what followed). Either way the player is told
			// here, where the hole is, not after it or never.
			w.c.logger().Info("output entries missing from the stream", "fence", o.Fence, "before_seq", o.Seq, "missing", n)
			if err := w.write(encodeGap("", fmt.Sprintf("%d pieces of output were lost by the server", n))); err != nil {
				return err
			}
		}
	}
	b, err := encodeOutput(o, withID)
	if err != nil {
		w.c.srv.m.badOutput.Inc()
		w.c.logger().Warn("skipping output entry", "err", err)
		if withID && o.Seq > 0 {
			w.fence, w.seq = o.Fence, o.Seq // skipped, not missing
		}
		return nil
	}
	if err := w.write(b); err != nil {
		return err
	}
	if withID {
		w.lastID = o.ID
		if o.Seq > 0 {
			w.fence, w.seq = o.Fence, o.Seq
		}
		return w.inputSeen(o)
	}
	return nil
}

// placeAt takes the numbers of the entry the writer resumes after, when it
// has none yet (a resume: that entry went out on an earlier connection), so
// a hole right after it shows.
func (w *writer) placeAt(at *store.Output) {
	if at != nil && w.fence == 0 && at.Seq > 0 {
		w.fence, w.seq = at.Fence, at.Seq
	}
}

// missing counts the numbered entries of o's fence that should have come
// before o and did not: after relay's re-read of the stream, or in a
// backlog read, a hole in the numbers is output nobody can send any more.
func (w *writer) missing(o store.Output) uint64 {
	switch {
	case o.Seq == 0 || w.fence == 0:
		return 0
	case o.Fence == w.fence && w.seq > 0 && o.Seq > w.seq+1:
		return o.Seq - w.seq - 1
	case o.Fence > w.fence && o.Seq > 1:
		return o.Seq - 1
	}
	return 0
}

// inputSeen settles the outstanding lines an entry tells about. The
// writer sees every entry, in stream order (holes are filled from the
// stream before what follows them), so when it sees a fence's first entry
// it has seen every record the older fences' workers made.
func (w *writer) inputSeen(o store.Output) error {
	c := w.c
	if o.Kind == store.OutInput && o.Viewer == c.id && o.InputSeq > 0 {
		c.in.ack(o.Fence, o.InputSeq)
	}
	// Only a live owner's entries show a new fence: they are numbered. A
	// worker that lost its lease may still note a gap with its old fence
	// and no number; that says nothing about the lines.
	if o.Fence > 0 && o.Seq > 0 {
		if n := c.in.lostBelow(o.Fence); n > 0 {
			return w.reportLost(n, lostStopped)
		}
	}
	return nil
}
