package main

import (
	"io"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	in := strings.NewReader("first\r\nsecond\n\nlast")
	for _, want := range []string{"first", "second", "", "last"} {
		got, err := readLine(in)
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	if _, err := readLine(in); err == nil {
		t.Fatal("read past the end")
	}
	if _, err := readLine(strings.NewReader(strings.Repeat("x", maxLineLen+1))); err == nil {
		t.Fatal("an overlong line was accepted")
	}
	// One line is consumed, and nothing after it.
	r := strings.NewReader("a\nrest")
	readLine(r)
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("rest %q", rest)
	}
}

func TestPrompter(t *testing.T) {
	p := func(s string) prompter { return prompter{in: strings.NewReader(s), prompts: io.Discard} }
	if b, err := p("1234\n1234\n").newPIN("new PIN"); err != nil || string(b) != "1234" {
		t.Fatalf("%q %v", b, err)
	}
	for in, want := range map[string]string{
		"1234\n4321\n":                       "do not match",
		"123\n123\n":                         "at least 4",
		"\n":                                 "1 to 64",
		"":                                   "end of input",
		strings.Repeat("9", maxPIN+1) + "\n": "1 to 64",
	} {
		if _, err := p(in).newPIN("new PIN"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	if s, err := p("CODE-1\n").line("activation code"); err != nil || s != "CODE-1" {
		t.Fatalf("%q %v", s, err)
	}
}
