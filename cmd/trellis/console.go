package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/trellis-mud/trellis/edge/auth"
	"github.com/trellis-mud/trellis/internal/console"
)

// runConsole serves the operator's web console on its admin listener.
func runConsole(ctx context.Context, args []string) error {
	var (
		cc console.Config
		ac auth.Config
	)
	st, log, err := startComponent("console", args, envSection{"TRELLIS_CONSOLE", &cc}, envSection{"TRELLIS_AUTH", &ac})
	if err != nil {
		return err
	}
	defer st.Close()
	verifier, err := auth.NewVerifier([]byte(ac.Secret))
	if err != nil {
		return err
	}
	srv, err := console.New(cc, verifier, st, log.With("component", "console"))
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// devOperatorTTL is how long the operator token dev prints is valid.
const devOperatorTTL = 24 * time.Hour

// devConsole listens for dev's console and mints the operator token its
// banner prints (dev's secret may be a random one no other terminal has).
func devConsole(cc console.Config, secret string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", cc.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("console: listen on %s: %w (set TRELLIS_CONSOLE_LISTEN=127.0.0.1:0 for any free port)", cc.Listen, err)
	}
	tok, err := auth.MintOperator([]byte(secret), "dev", devOperatorTTL)
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	return ln, tok, nil
}
