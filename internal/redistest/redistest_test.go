package redistest

import (
	"testing"
)

// The single server after the launch refactor: start, databases, AOF
// across a restart, kill and start again.
func TestServerLifecycle(t *testing.T) {
	ctx := testCtx(t)
	s := New(t, Options{AOF: true})
	rdb := s.Client(t)
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if other := s.Client(t); other.Exists(ctx, "k").Val() != 0 {
		t.Error("a second Client shares the first one's database")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after restart with AOF = %q, %v", v, err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := s.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after StartAgain: %v", err)
	}
	if Client(t).Ping(ctx).Err() != nil {
		t.Error("shared server does not answer")
	}
}
