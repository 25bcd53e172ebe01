// Package stacktest serves a real wscad stack on loopback for tests.
package stacktest

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// Running is a stack serving HTTP until the test ends.
type Running struct {
	*stack.Stack
	URL string
	// AdminURL is the admin API's base URL, when Options.AdminToken is set.
	AdminURL string
	Device   device.Device
}

// Start opens the store at dsn, builds the stack over dev with the options
// mod sets, and serves it on 127.0.0.1. Logs are discarded unless
// WSCA_TEST_LOG is set.
func Start(t testing.TB, dsn string, dev device.Device, mod func(*stack.Options)) *Running {
	t.Helper()
	return start(t, dsn, dev, "", mod)
}

// StartWSCA starts a WSCA-only instance (split roles, docs/wsca.md): dev is
// its own device, never a wallet-key device; its server keys live under
// wscd.WSCAPrefix, and it serves the wsca role only.
func StartWSCA(t testing.TB, dsn string, dev device.Device, mod func(*stack.Options)) *Running {
	t.Helper()
	return start(t, dsn, dev, wscd.WSCAPrefix, func(o *stack.Options) {
		o.Roles = server.Roles{WSCA: true}
		if mod != nil {
			mod(o)
		}
	})
}

func start(t testing.TB, dsn string, dev device.Device, prefix string, mod func(*stack.Options)) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("WSCA_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	w, err := wscd.New(wscd.Config{Device: dev, Store: st, Logger: log, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	o := stack.Options{Logger: log}
	if mod != nil {
		mod(&o)
	}
	// The listeners first: the public URL goes into the status lists.
	lns := make([]net.Listener, 1, 2)
	if len(o.AdminToken) > 0 {
		lns = lns[:2]
	}
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if o.PublicURL == "" {
		o.PublicURL = "http://" + lns[0].Addr().String()
	}
	s, err := stack.Build(ctx, st, w, o)
	if err != nil {
		t.Fatal(err)
	}
	r := &Running{Stack: s, Device: dev, URL: "http://" + lns[0].Addr().String()}
	serve := []func(context.Context, net.Listener) error{s.Server.Serve}
	if len(lns) > 1 {
		serve = append(serve, s.Server.ServeAdmin)
		r.AdminURL = "http://" + lns[1].Addr().String()
	}
	serve = append(serve, func(ctx context.Context, _ net.Listener) error { return s.Background(ctx) })
	lns = append(lns, nil)
	done := make(chan error, len(serve))
	for i, fn := range serve {
		go func() { done <- fn(ctx, lns[i]) }()
	}
	t.Cleanup(func() {
		cancel()
		for range serve {
			if err := <-done; err != nil {
				t.Errorf("stacktest: serve: %v", err)
			}
		}
		st.Close()
	})
	return r
}
