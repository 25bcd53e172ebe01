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
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("WSCA_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	w, err := wscd.New(wscd.Config{Device: dev, Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	o := stack.Options{Logger: log}
	if mod != nil {
		mod(&o)
	}
	s, err := stack.Build(ctx, st, w, o)
	if err != nil {
		t.Fatal(err)
	}
	r := &Running{Stack: s, Device: dev}
	serve := []func(context.Context, net.Listener) error{s.Server.Serve}
	if len(o.AdminToken) > 0 {
		serve = append(serve, s.Server.ServeAdmin)
	}
	done := make(chan error, len(serve))
	for i, fn := range serve {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			r.URL = "http://" + ln.Addr().String()
		} else {
			r.AdminURL = "http://" + ln.Addr().String()
		}
		go func() { done <- fn(ctx, ln) }()
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
