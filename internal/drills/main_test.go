package drills

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trellisBin is the binary under test, built once by TestMain. It is empty
// with -short, when no drill runs.
var trellisBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "trellis-drills-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		os.Exit(1)
	}
	start := time.Now()
	trellisBin, err = buildTrellis(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drills:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "drills: built %s (race=%v) in %s\n", trellisBin, raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTrellis compiles ./cmd/trellis of the module this test runs in
// into dir and returns the binary's path.
func buildTrellis(dir string) (string, error) {
	goTool, err := goCommand()
	if err != nil {
		return "", err
	}
	root, err := moduleRoot(goTool)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "trellis")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// Same flags as the test binary: the compile cache is shared, and
		// races in the edge and worker surface in the drills' output.
		args = append(args, "-race")
	}
	args = append(args, "./cmd/trellis")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), root, err, out.String())
	}
	return bin, nil
}

// goCommand finds the go tool: the one in PATH (go test put it there), or
// the one of the GOROOT in the environment.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("the go tool is neither in PATH nor in $GOROOT/bin")
}

// moduleRoot is the directory of the go.mod governing the test's working
// directory (go test runs tests in their package directory).
func moduleRoot(goTool string) (string, error) {
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}

// slow skips a drill under -short: make test runs them, quick loops don't.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process drill: skipped with -short")
	}
}
