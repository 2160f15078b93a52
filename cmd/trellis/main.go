package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and a context cancelled on SIGINT or SIGTERM.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands is the table of subcommands; deploy/ tests parse it to check
// that manifests only name subcommands that exist. It is filled in init
// because the commands' usage text reads the table.
var commands []command

func init() {
	commands = []command{
		{name: "edge", summary: "run the WebSocket gateway browsers connect to", run: runEdge},
		{name: "worker", summary: "run a worker: the supervisor of game connections", run: runWorker},
		{name: "dev", summary: "run everything in one process (embedded Redis, demo game, worker, edge)", run: runDev},
		{name: "demo-game", summary: "run the demo telnet game server", run: runDemoGame},
		{name: "games", summary: "manage the game registry: ls, show, add, update, rm, import", run: runGames},
		{name: "sessions", summary: "list, show and kill sessions", run: runSessions},
		{name: "replay", summary: "replay streams: transcript, events, redrive", run: runReplay},
		{name: "ops", summary: "operator views: lag (control stream and dead letters)", run: runOps},
		{name: "console", summary: "run the operator's web console (an admin listener)", run: runConsole},
		{name: "token", summary: "mint a player token, or with -operator a console token (HS256 JWT)", run: runToken},
		{name: "bench", summary: "end-to-end load generator with baselines", run: runBench},
	}
}

// errUsage marks an error the user made on the command line; main prints
// the usage hint with it and exits 2.
var errUsage = errors.New("usage")

func main() {
	applyMemoryLimit()
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs one command and returns the process's exit code: 0 for
// success (and --help), 1 for a failure, 2 for a usage error (the command
// line itself is wrong), whose message and usage hint go to stderr.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if isHelp(args[0]) {
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		// `trellis help games` is `trellis games --help`.
		args = []string{args[1], "--help"}
	}
	name := args[0]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "trellis %s: %v\nRun 'trellis %s --help' for usage.\n", name, err, name)
			return 2
		default:
			fmt.Fprintf(stderr, "trellis %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "trellis: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

func usage(w io.Writer) {
	fmt.Fprintln(w, "Trellis: play telnet games (MUDs) in a browser, at scale.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: trellis <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, c := range commands {
			if c.name == n {
				fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'trellis <command> --help' for a command's flags and environment variables.")
}

// newFlags makes a flag set whose usage prints the summary, the flags and
// the environment variables of the given config sections.
func newFlags(name, synopsis string, sections ...envSection) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: trellis %s\n", synopsis)
		for _, c := range commands {
			if c.name == strings.Fields(name)[0] {
				fmt.Fprintf(w, "\n%s.\n", upperFirst(c.summary))
			}
		}
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
		if len(sections) > 0 {
			fmt.Fprintln(w, "\nEnvironment:")
			printEnv(w, sections...)
		}
	}
	return fs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// usageErrorf is a usage error: main prints it with the usage hint and
// exits 2.
func usageErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// parseFlags parses args of a command that takes no positional
// arguments, printing the usage to stdout for --help; other mistakes, an
// unexpected argument included, become usage errors that main reports
// once.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// parseOnly parses the flags up to the first positional argument.
func parseOnly(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// parseWithArgs is parseFlags for commands that take positional arguments:
// flags may come before, between or after them (`sessions kill ann/demo
// -reason x`), as operators type them. "-" alone is an argument (stdin).
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parseOnly(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
