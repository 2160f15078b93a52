package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/trellis-mud/trellis/store"
)

func runOps(ctx context.Context, args []string) error {
	const synopsis = "ops lag [-o json] [-dead N]"
	fs := newFlags("ops", synopsis, redisSection(&store.Config{}))
	out := outputFlag(fs)
	dead := fs.Int64("dead", 20, "lag: how many dead letters to list (the newest)")
	if len(args) > 0 && isHelp(args[0]) {
		args = []string{"--help"}
	}
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usageErrorf("missing subcommand: lag")
	case pos[0] != "lag":
		return usageErrorf("unknown subcommand %q: want lag", pos[0])
	case len(pos) > 1:
		return usageErrorf("lag takes no arguments (got %q)", pos[1])
	case *dead < 0:
		return usageErrorf("-dead %d: want 0 or more", *dead)
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	st, _, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	status, err := st.ControlStatus(ctx)
	if err != nil {
		return err
	}
	letters, err := st.DeadLetters(ctx, *dead)
	if err != nil {
		return err
	}
	if *out == "json" {
		return writeJSON(os.Stdout, toLagJSON(status, letters))
	}
	lag := strconv.FormatInt(status.Lag, 10)
	if status.Lag < 0 {
		lag = "unknown"
	}
	streams := "Control stream"
	if len(status.Shards) > 1 {
		streams = fmt.Sprintf("Control streams (%d shards)", len(status.Shards))
	}
	fmt.Printf("%s: %d entries, lag %s (not yet delivered), %d pending (delivered, not acknowledged), %d dead letters.\n",
		streams, status.Length, lag, status.Pending, status.DeadLetters)
	if len(status.Shards) > 1 {
		fmt.Println()
		t := newTable("SHARD", "STREAM", "ENTRIES", "LAG", "PENDING", "DEAD")
		for _, sh := range status.Shards {
			l := strconv.FormatInt(sh.Lag, 10)
			if sh.Lag < 0 {
				l = "unknown"
			}
			t.row(strconv.Itoa(sh.Shard), sh.Stream, strconv.FormatInt(sh.Length, 10), l,
				strconv.FormatInt(sh.Pending, 10), strconv.FormatInt(sh.DeadLetters, 10))
		}
		t.flush()
	}
	if len(status.Consumers) > 0 {
		fmt.Println()
		t := newTable("CONSUMER", "PENDING", "IDLE")
		for _, c := range status.Consumers {
			t.row(c.Name, strconv.FormatInt(c.Pending, 10), c.Idle.Round(time.Millisecond).String())
		}
		t.flush()
	}
	if len(letters) > 0 {
		fmt.Println()
		t := newTable("DEAD LETTER", "CONTROL ID", "TYPE", "SESSION", "DELIVERIES", "REASON")
		for _, l := range letters {
			typ, session := string(l.Command.Type), l.Command.Key().String()
			if typ == "" {
				typ, session = "(undecodable)", fmt.Sprintf("%.40q", l.Raw)
			}
			t.row(l.ID, l.ControlID, typ, session, l.Deliveries, l.Reason)
		}
		t.flush()
	}
	return nil
}
