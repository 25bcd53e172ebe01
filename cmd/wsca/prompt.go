package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// PIN limits. The server never sees the PIN (OPAQUE), so these are only
// the wallet's own rules for a new PIN, and a bound on what is read.
const (
	minNewPIN  = 4
	maxPIN     = 64
	maxLineLen = 256
)

// prompter reads PINs and activation codes: PINs from the terminal without
// echo when stdin is one, otherwise (or with --pin-stdin) one line each
// from stdin, so that scripts can pipe them (printf '123456\n' | wsca
// login). PINs are never taken from argv.
type prompter struct {
	in         io.Reader
	prompts    io.Writer // stderr
	forceStdin bool
}

func newPrompter(e env, forceStdin bool) prompter {
	return prompter{in: e.stdin, prompts: e.stderr, forceStdin: forceStdin}
}

// terminal returns stdin's descriptor when it is a terminal to read from.
func (p prompter) terminal() (int, bool) {
	if p.forceStdin {
		return 0, false
	}
	f, ok := p.in.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// pin reads a PIN. The caller clears it after use.
func (p prompter) pin(label string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if fd, ok := p.terminal(); ok {
		fmt.Fprintf(p.prompts, "%s: ", label)
		b, err = term.ReadPassword(fd)
		fmt.Fprintln(p.prompts)
	} else {
		b, err = readLine(p.in)
	}
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("reading the %s: %w", label, err)
	}
	if len(b) == 0 || len(b) > maxPIN {
		clear(b)
		return nil, fmt.Errorf("the %s must have 1 to %d characters", label, maxPIN)
	}
	return b, nil
}

// newPIN reads a new PIN twice; both must match.
func (p prompter) newPIN(label string) ([]byte, error) {
	first, err := p.pin(label)
	if err != nil {
		return nil, err
	}
	if len(first) < minNewPIN {
		clear(first)
		return nil, fmt.Errorf("the %s must have at least %d characters", label, minNewPIN)
	}
	again, err := p.pin(label + " again")
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(again)
	if subtle.ConstantTimeCompare(first, again) != 1 {
		clear(first)
		return nil, errors.New("the two PINs do not match")
	}
	return first, nil
}

// line reads a non-secret value (an activation code) with echo.
func (p prompter) line(label string) (string, error) {
	if _, ok := p.terminal(); ok {
		fmt.Fprintf(p.prompts, "%s: ", label)
	}
	b, err := readLine(p.in)
	if err != nil {
		return "", fmt.Errorf("reading the %s: %w", label, err)
	}
	if len(b) == 0 {
		return "", fmt.Errorf("no %s given", label)
	}
	return string(b), nil
}

// readLine reads one line, a byte at a time so that nothing past it is
// consumed (the next prompt reads the next line), without its "\n" or
// "\r\n".
func readLine(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, maxLineLen)
	var c [1]byte
	defer clear(c[:])
	for {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				break
			}
			if len(buf) == maxLineLen {
				clear(buf)
				return nil, fmt.Errorf("line longer than %d bytes", maxLineLen)
			}
			buf = append(buf, c[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(buf) == 0 {
				return nil, errors.New("end of input")
			}
			break
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf[n-1] = 0
		buf = buf[:n-1]
	}
	return buf, nil
}
