package worker

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
)

// A worker process killed without any clean-up: its session comes back on
// another worker with a higher fence once the lease expired and the edge
// re-attached, and the dead worker's fence is refused from then on.
func TestFailoverAfterSIGKILL(t *testing.T) {
	e := newEnv(t, demogame.Config{})
	const ttl = time.Second

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+e.url, childNamespaceEnv+"="+e.ns, "TRELLIS_TEST_LEASE_TTL="+ttl.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := readLines(bufio.NewScanner(stdout))
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	var childID string
	select {
	case line := <-lines:
		childID = strings.TrimPrefix(line, "ready ")
	case <-time.After(20 * time.Second):
		t.Fatal("child worker did not start")
	}
	go func() {
		for range lines { // drain until the pipe closes
		}
		_ = cmd.Wait()
		close(exited)
	}()

	u := e.user("old")
	e.attach(u, "v1", "edge-1", "")
	e.waitState(u, store.StateConnected)
	old, _ := e.lease(u)
	if old.Owner != childID {
		t.Fatalf("session started on %s, want the child %s", old.Owner, childID)
	}

	cfg := testConfig()
	cfg.LeaseTTL = ttl
	w := e.startWorker(cfg)

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-exited
	// The edge's watchdog: once the lease is gone, re-attach with reason
	// failover.
	waitFor(t, ttl+2*time.Second, "the dead worker's lease to expire", func() bool {
		_, held := e.lease(u)
		return !held
	})
	e.attach(u, "v1", "edge-1", "failover")
	var back store.Output
	waitFor(t, ttl+2*time.Second, "reconnected on the live worker", func() bool {
		for _, o := range e.outputs(u) {
			if o.Kind == store.OutStatus && o.State == store.StateReconnected {
				back = o
				return true
			}
		}
		return false
	})
	t.Logf("failover time (SIGKILL to reconnected status, lease TTL %s): %s", ttl, time.Since(killed))
	if back.Worker != w.ID() || back.Fence <= old.Fence {
		t.Fatalf("reconnected by %s with fence %d; want %s with a fence above %d", back.Worker, back.Fence, w.ID(), old.Fence)
	}
	// The old worker's late writes are refused.
	_, err = e.st.AppendOutput(e.ctx, key(u), store.Output{Kind: store.OutText, Text: "zombie", Fence: old.Fence})
	if !errors.Is(err, store.ErrStaleFence) {
		t.Fatalf("write with the dead worker's fence: %v, want ErrStaleFence", err)
	}
	if countEvents(e.events(u), store.EvSessionFailover) != 1 {
		t.Error("no failover event")
	}
	// And the game session works on the new worker.
	e.waitText(u, "What is your name?")
	e.input(u, "Newname")
	e.waitText(u, "Password:")
}
