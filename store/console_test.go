package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/internal/redistest"
)

func TestEdgesListsLiveHeartbeats(t *testing.T) {
	ctx := testContext(t)
	st, _ := newStore(t)
	for _, id := range []string{"edge-b", "edge:a%"} { // an id that needs escaping
		if err := st.EdgeHeartbeat(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.EdgeHeartbeat(ctx, "gone", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.EdgeGone(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	edges, err := st.Edges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) != 2 || edges[0].ID != "edge-b" || edges[1].ID != "edge:a%" || edges[0].Last.IsZero() {
		t.Fatalf("Edges = %+v; want edge-b and edge:a%% with their beats", edges)
	}
}

func TestEdgesOnCluster(t *testing.T) {
	c := redistest.SharedCluster(t)
	st := New(c.Client(t))
	ctx := testContext(t)
	// Ids spread over the cluster's slots; other tests share the cluster,
	// so look for these among whatever else is there.
	want := map[string]bool{}
	for i := range 20 {
		id := fmt.Sprintf("console-test-%d-%d", time.Now().UnixNano(), i)
		want[id] = true
		if err := st.EdgeHeartbeat(ctx, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.EdgeGone(ctx, id) })
	}
	edges, err := st.Edges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edges {
		delete(want, e.ID)
	}
	if len(want) > 0 {
		t.Fatalf("Edges missed %d of 20 edges spread over the cluster", len(want))
	}
}

func TestRecentEventsNewestFirst(t *testing.T) {
	ctx := testContext(t)
	st, _ := newStore(t)
	var ids []string
	for i := range 5 {
		id, err := st.AppendEvent(ctx, NewEvent(EvEdgeStarted, fmt.Sprintf("edge/%d", i), SessionKey{}, "", nil))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	got, err := st.RecentEvents(ctx, "+", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[4] || got[1].ID != ids[3] {
		t.Fatalf("RecentEvents(+, 2) = %+v; want the last two, newest first", got)
	}
	got, err = st.RecentEvents(ctx, "("+ids[3], 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != ids[2] || got[2].ID != ids[0] {
		t.Fatalf("RecentEvents((%s) = %+v; want the three before it", ids[3], got)
	}
}
