package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Every script in lua/ is embedded and names its KEYS and ARGV in the
// comment that opens it; the shared prelude names its function's keys.
func TestLuaFilesNameTheirKeysAndArgs(t *testing.T) {
	t.Parallel()
	embedded := map[string]string{
		"output_bound.lua":   outputBoundLua,
		"append.lua":         appendLua,
		"lost_gap.lua":       lostGapLua,
		"acquire.lua":        acquireLua,
		"renew.lua":          renewLua,
		"release.lua":        releaseLua,
		"delete_session.lua": deleteSessionLua,
		"set_viewers.lua":    setViewersLua,
	}
	files, err := filepath.Glob("lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(embedded) {
		t.Errorf("lua/ holds %d files, %d are embedded", len(files), len(embedded))
	}
	for _, f := range files {
		name := filepath.Base(f)
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if embedded[name] != string(src) {
			t.Errorf("%s is not embedded as it is on disk", name)
		}
		var header strings.Builder
		for _, line := range strings.Split(string(src), "\n") {
			if !strings.HasPrefix(line, "--") {
				break
			}
			header.WriteString(line + "\n")
		}
		h := header.String()
		want := []string{"KEYS[1]", "ARGV[1]", "Returns"}
		if name == "output_bound.lua" {
			want = []string{"bound_output(out, meta, marks, ids, sizes, maxbytes)"}
		}
		for _, w := range want {
			if !strings.Contains(h, w) {
				t.Errorf("%s: its opening comment does not name %s", name, w)
			}
		}
	}
}

// fakeRedisError is a reply error as go-redis hands it over.
type fakeRedisError string

func (e fakeRedisError) Error() string { return string(e) }
func (fakeRedisError) RedisError()     {}

// A reply about one command (a script's own error) is an answer; a cluster
// in the middle of a slot move or a failover answered nothing.
func TestClusterInFluxIsNotAnAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reply  string
		answer bool
	}{
		{"STALE fence 3 < 4", true},
		{"NOFENCE never issued", true},
		{"TRYAGAIN Multiple keys request during rehashing of slot", false},
		{"ASK 3999 127.0.0.1:6381", false},
		{"MOVED 3999 127.0.0.1:6381", false},
		{"CLUSTERDOWN The cluster is down", false},
		{"LOADING Redis is loading the dataset in memory", false},
		{"READONLY You can't write against a read only replica.", false},
	} {
		cmd := redis.NewCmd(context.Background())
		cmd.SetErr(fakeRedisError(tc.reply))
		if got := isCommandError([]*redis.Cmd{cmd}); got != tc.answer {
			t.Errorf("%q: isCommandError = %v, want %v", tc.reply, got, tc.answer)
		}
	}
}
