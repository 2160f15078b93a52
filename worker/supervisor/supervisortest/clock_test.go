package supervisortest

import (
	"context"
	"testing"
	"time"
)

func TestClockFiresDueTimersInOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewClock(start)
	late := c.NewTimer(3 * time.Second)
	early := c.NewTimer(time.Second)
	stopped := c.NewTimer(2 * time.Second)
	if n := c.Timers(); n != 3 {
		t.Fatalf("Timers() = %d, want 3", n)
	}
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer = false, want true")
	}
	if stopped.Stop() {
		t.Fatal("second Stop = true, want false")
	}

	c.Advance(time.Second)
	select {
	case got := <-early.C():
		if want := start.Add(time.Second); !got.Equal(want) {
			t.Fatalf("early fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("early timer did not fire after Advance(1s)")
	}
	select {
	case <-late.C():
		t.Fatal("late timer fired early")
	default:
	}
	if early.Stop() {
		t.Fatal("Stop of a fired timer = true, want false")
	}

	c.Advance(2 * time.Second)
	select {
	case <-late.C():
	default:
		t.Fatal("late timer did not fire after Advance(3s)")
	}
	select {
	case <-stopped.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if got, want := c.Now(), start.Add(3*time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}

func TestClockZeroTimerFiresAtOnce(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	select {
	case <-c.NewTimer(0).C():
	default:
		t.Fatal("timer for 0 did not fire at once")
	}
	if n := c.Timers(); n != 0 {
		t.Fatalf("Timers() = %d, want 0", n)
	}
}

func TestWaitForTimers(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	errc := make(chan error, 1)
	go func() { errc <- c.WaitForTimers(ctx, 2) }()
	c.NewTimer(time.Second)
	c.NewTimer(time.Second)
	if err := <-errc; err != nil {
		t.Fatalf("WaitForTimers: %v", err)
	}

	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := c.WaitForTimers(short, 3); err == nil {
		t.Fatal("WaitForTimers with a done context and too few timers = nil, want error")
	}
}
