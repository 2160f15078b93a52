package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/trellis-mud/trellis/edge"
	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/demogame"
	"github.com/trellis-mud/trellis/store"
	"github.com/trellis-mud/trellis/worker"
)

func runEdge(ctx context.Context, args []string) error {
	var (
		ec edge.Config
		ac auth.Config
	)
	st, log, err := startComponent("edge", args, envSection{"TRELLIS_EDGE", &ec}, envSection{"TRELLIS_AUTH", &ac})
	if err != nil {
		return err
	}
	defer st.Close()
	verifier, err := auth.NewVerifier([]byte(ac.Secret))
	if err != nil {
		return err
	}
	srv, err := edge.New(ec, verifier, st, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func runWorker(ctx context.Context, args []string) error {
	var wc worker.Config
	st, log, err := startComponent("worker", args, envSection{"TRELLIS_WORKER", &wc})
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := worker.New(wc, st, log)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// startComponent parses a long-running component's flags (only --help),
// then loads its configuration with Redis and logging, and connects.
func startComponent(name string, args []string, own ...envSection) (*store.Store, *slog.Logger, error) {
	help := append(own, redisSection(&store.Config{}), logSection(&LogConfig{}))
	if err := parseFlags(newFlags(name, name, help...), args); err != nil {
		return nil, nil, err
	}
	return openStore(own...)
}

func runDemoGame(ctx context.Context, args []string) error {
	var lc LogConfig
	fs := newFlags("demo-game", "demo-game [-listen ADDR] [flags]", logSection(&lc))
	listen := fs.String("listen", "127.0.0.1:4000", "address to listen on")
	var cfg demogame.Config
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := loadEnv(logSection(&lc)); err != nil {
		return err
	}
	log, err := lc.logger(os.Stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("demo game listening", "addr", ln.Addr().String(), "bench", cfg.Bench)
	return demogame.New(cfg).Serve(ctx, ln)
}

func runToken(ctx context.Context, args []string) error {
	var ac auth.Config
	fs := newFlags("token", "token -user ID | -operator NAME [-ttl 24h]", envSection{"TRELLIS_AUTH", &ac})
	user := fs.String("user", "", "the player's user id (the token's subject)")
	operator := fs.String("operator", "", "mint an operator token for the web console instead, for this operator name (a player token is refused there, and this one at the edge)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*user == "") == (*operator == "") {
		return fmt.Errorf("%w: want one of -user or -operator", errUsage)
	}
	if *ttl <= 0 {
		return fmt.Errorf("%w: -ttl must be positive", errUsage)
	}
	if err := loadEnv(envSection{"TRELLIS_AUTH", &ac}); err != nil {
		return err
	}
	var (
		tok string
		err error
	)
	if *operator != "" {
		tok, err = auth.MintOperator([]byte(ac.Secret), *operator, *ttl)
	} else {
		tok, err = auth.Mint([]byte(ac.Secret), *user, *ttl)
	}
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
