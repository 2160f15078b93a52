package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/trellis-mud/trellis/internal/ops"
	"github.com/trellis-mud/trellis/store"
)

// gamesArgs is how many positional arguments each games subcommand takes.
var gamesArgs = map[string]int{"ls": 0, "list": 0, "show": 1, "add": 0, "update": 0, "rm": 1, "remove": 1, "import": 1}

func runGames(ctx context.Context, args []string) error {
	const synopsis = "games ls|show ID|add|update|rm ID|import FILE [flags]"
	if len(args) == 0 || isHelp(args[0]) {
		fs := newFlags("games", synopsis, redisSection(&store.Config{}))
		if len(args) == 0 {
			return usageErrorf("missing subcommand: ls, show ID, add, update, rm ID or import FILE")
		}
		fs.SetOutput(os.Stdout)
		fs.Usage()
		fmt.Println("\nadd and update take: -id -name -description -host -port -tls -tls-insecure -tls-ca-file -tls-pin-sha256 -proxy-protocol -charset -mnes -mxp")
		return nil
	}
	sub, rest := args[0], args[1:]
	want, known := gamesArgs[sub]
	if !known {
		return usageErrorf("unknown subcommand %q: want ls, show, add, update, rm or import", sub)
	}
	fs := newFlags("games "+sub, synopsis, redisSection(&store.Config{}))
	out := outputFlag(fs)
	var g store.Game
	if sub == "add" || sub == "update" {
		fs.StringVar(&g.ID, "id", "", "game id (a-z 0-9 _ -), what browsers name it by")
		fs.StringVar(&g.Name, "name", "", "display name")
		fs.StringVar(&g.Description, "description", "", "one-paragraph description")
		fs.StringVar(&g.Host, "host", "", "game host name or IP")
		fs.IntVar(&g.Port, "port", 0, "game TCP port (1-65535)")
		fs.BoolVar(&g.TLS, "tls", false, "connect with TLS")
		fs.BoolVar(&g.TLSInsecure, "tls-insecure", false, "skip TLS certificate verification")
		fs.StringVar(&g.TLSCAFile, "tls-ca-file", "", "PEM file of CAs on the workers' hosts that verify the game's TLS certificate instead of the system roots")
		fs.StringVar(&g.TLSPinSHA256, "tls-pin-sha256", "", "pin the game's TLS key: SHA-256 of its certificate's SPKI, base64 or hex (replaces chain, name and date checks)")
		fs.StringVar(&g.ProxyProtocol, "proxy-protocol", "", "send the player's IP in a PROXY protocol header: v1 or v2 (only for games that expect one)")
		fs.StringVar(&g.Charset, "charset", "", "legacy charset if the game is not UTF-8 (latin1, cp437, ...)")
		fs.BoolVar(&g.MNES, "mnes", false, "send the player's IP to the game (MNES / NEW-ENVIRON)")
		fs.BoolVar(&g.MXP, "mxp", false, "accept MXP from the game (links, colours; a safe subset)")
	}
	pos, err := parseWithArgs(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) != want {
		switch {
		case sub == "import":
			return usageErrorf("import takes one file (JSON or YAML; - for stdin)")
		case want == 1:
			return usageErrorf("%s takes one game id", sub)
		}
		return usageErrorf("%s takes no arguments (got %q)", sub, pos[0])
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	st, _, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()

	switch sub {
	case "ls", "list":
		games, err := st.ListGames(ctx)
		if err != nil {
			return err
		}
		if *out == "json" {
			list := make([]gameJSON, 0, len(games))
			for _, g := range games {
				list = append(list, toGameJSON(g))
			}
			return writeJSON(os.Stdout, list)
		}
		t := newTable("ID", "NAME", "ADDRESS", "TLS", "CHARSET", "MNES")
		for _, g := range games {
			t.row(g.ID, g.Name, g.Addr(), yesNo(g.TLS), orDash(g.Charset), yesNo(g.MNES))
		}
		t.flush()
		if len(games) == 0 {
			fmt.Fprintln(os.Stderr, "No games registered. Add one with: trellis games add -id demo -name Demo -host 127.0.0.1 -port 4000")
		}
		return nil
	case "show":
		g, err := st.GetGame(ctx, pos[0])
		if err != nil {
			return err
		}
		mssp, _ := st.GameMSSP(ctx, g.ID)
		if *out == "json" {
			if mssp == nil {
				mssp = map[string][]string{}
			}
			return writeJSON(os.Stdout, struct {
				Game gameJSON            `json:"game"`
				MSSP map[string][]string `json:"mssp"` // the game's MSSP variables, as the game names them
			}{toGameJSON(g), mssp})
		}
		t := newTable("FIELD", "VALUE")
		t.row("id", g.ID)
		t.row("name", g.Name)
		t.row("description", orDash(g.Description))
		t.row("address", g.Addr())
		t.row("tls", yesNo(g.TLS)+insecure(g))
		t.row("proxy protocol", orDash(g.ProxyProtocol))
		t.row("charset", orDash(g.Charset))
		t.row("mnes", yesNo(g.MNES))
		t.row("mxp", yesNo(g.MXP))
		for _, k := range slices.Sorted(maps.Keys(mssp)) {
			t.row("mssp "+k, strings.Join(mssp[k], ", "))
		}
		t.flush()
		return nil
	case "add":
		if err := g.Validate(); err != nil {
			return err
		}
		warnings, err := checkGames(ctx, st, g)
		if err != nil {
			return err
		}
		if err := st.AddGame(ctx, g); err != nil {
			if errors.Is(err, store.ErrGameExists) {
				return fmt.Errorf("%w (change it with 'trellis games update')", err)
			}
			return err
		}
		printWarnings(warnings)
		fmt.Printf("Added %s (%s at %s).\n", g.ID, g.Name, g.Addr())
		return nil
	case "update":
		if err := g.Validate(); err != nil {
			return err
		}
		old, err := st.GetGame(ctx, g.ID)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		warnings, err := checkGames(ctx, st, g)
		if err != nil {
			return err
		}
		if err := st.UpdateGame(ctx, g); err != nil {
			return err
		}
		printWarnings(warnings)
		if !addrChanged(old, g) {
			fmt.Printf("Updated %s.\n", g.ID)
			return nil
		}
		n, err := stopGameSessions(ctx, st, g.ID, reasonAddrChanged)
		fmt.Printf("Updated %s; its address changed: %s.\n", g.ID, stoppedText(n))
		if err != nil {
			return fmt.Errorf("%w (run 'trellis games rm' or 'trellis sessions kill' for the rest; they still talk to %s)", err, old.Addr())
		}
		return nil
	case "rm", "remove":
		id := pos[0]
		// Remove first, so the stopped sessions cannot be started again.
		rmErr := st.RemoveGame(ctx, id)
		if rmErr != nil && !errors.Is(rmErr, store.ErrUnknownGame) {
			return rmErr
		}
		// An unregistered id may still have sessions (removed before rm
		// stopped them): stop those too.
		n, err := stopGameSessions(ctx, st, id, reasonGameRemoved)
		switch {
		case rmErr == nil:
			fmt.Printf("Removed game %s; %s.\n", id, stoppedText(n))
		case n > 0:
			fmt.Printf("Game %s was not registered; %s left from it.\n", id, stoppedText(n))
		case err == nil:
			return rmErr
		}
		if err != nil {
			return fmt.Errorf("%w (run 'trellis games rm %s' again to stop the rest)", err, id)
		}
		return nil
	case "import":
		f := os.Stdin
		if pos[0] != "-" {
			if f, err = os.Open(pos[0]); err != nil {
				return err
			}
			defer f.Close()
		}
		// Read once: the file is parsed to be checked, then imported.
		data, err := io.ReadAll(io.LimitReader(f, maxGamesFile+1))
		if err != nil {
			return fmt.Errorf("import %s: %w", pos[0], err)
		}
		games, err := store.ParseGames(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("import %s (nothing was changed): %w", pos[0], explainGamesError(err, data))
		}
		warnings, err := checkGames(ctx, st, games...)
		if err != nil {
			return fmt.Errorf("import %s (nothing was changed): %w", pos[0], err)
		}
		before, err := st.ListGames(ctx)
		if err != nil {
			return err
		}
		if games, err = st.ImportGames(ctx, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("import %s (nothing was changed): %w", pos[0], err)
		}
		printWarnings(warnings)
		fmt.Printf("Imported %s.\n", plural(len(games), "game"))
		old := make(map[string]store.Game, len(before))
		for _, g := range before {
			old[g.ID] = g
		}
		var errs []error
		for _, g := range games {
			if o, ok := old[g.ID]; ok && addrChanged(o, g) {
				n, err := stopGameSessions(ctx, st, g.ID, reasonAddrChanged)
				fmt.Printf("%s: address changed (%s to %s): %s.\n", g.ID, o.Addr(), g.Addr(), stoppedText(n))
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("imported, but some sessions at old addresses still run (stop them with 'trellis sessions kill'): %w", err)
		}
		return nil
	}
	return fmt.Errorf("games %s: not implemented", sub)
}

// maxGamesFile is the largest games file store.ParseGames takes; import
// reads one byte more, so that it can say the file is too large.
const maxGamesFile = 4 << 20

// checkGames refuses games that point at Trellis's own Redis and returns a
// warning for each host the workers refuse by default, to print once the
// games are written (ops's: the console's registry writes use it too).
var checkGames = ops.CheckGames

func printWarnings(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// insecure says how a TLS game's certificate is checked.
func insecure(g store.Game) string {
	switch {
	case !g.TLS:
		return ""
	case g.TLSInsecure:
		return " (certificate not verified)"
	case g.TLSPinSHA256 != "":
		return " (key pinned: sha256 " + g.TLSPinSHA256 + "; chain, name and dates not checked)"
	case g.TLSCAFile != "":
		return " (CA file " + g.TLSCAFile + ")"
	}
	return " (system roots)"
}
