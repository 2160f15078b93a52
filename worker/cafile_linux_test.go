package worker

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadCAFileBounds: a CA file is a regular file of at most 1 MiB with
// a PEM certificate in it; anything else is a clear error, never a hang.
func TestReadCAFileBounds(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#"), maxCAFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pem")
	if err := os.Symlink(ca.file, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{big, "larger than"}, {junk, "no PEM certificate"}, {fifo, "not a regular file"},
		{dir, "not a regular file"}, {filepath.Join(dir, "none"), "no such file"},
	} {
		if _, err := readCAFile(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.path, err, c.want)
		}
	}
	if _, err := readCAFile(link); err != nil {
		t.Errorf("a symlink to a CA file: %v", err)
	}
}
