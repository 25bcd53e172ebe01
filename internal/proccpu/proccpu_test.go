package proccpu

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statLine is a /proc/<pid>/stat line with the given fields.
func statLine(pid int, comm string, ppid int, ut, st, cut, cst int) string {
	return strconv.Itoa(pid) + " (" + comm + ") S " + strconv.Itoa(ppid) +
		" 1 1 0 -1 4194560 100 0 0 0 " +
		strconv.Itoa(ut) + " " + strconv.Itoa(st) + " " + strconv.Itoa(cut) + " " + strconv.Itoa(cst) +
		" 20 0 1 0 100 1000 100 18446744073709551615\n"
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Stat
		err      bool
	}{
		{name: "plain", in: statLine(42, "wscad", 1, 150, 50, 7, 3),
			want: Stat{PID: 42, Comm: "wscad", State: 'S', PPID: 1, User: 1500 * time.Millisecond, System: 500 * time.Millisecond,
				ChildUser: 70 * time.Millisecond, ChildSystem: 30 * time.Millisecond}},
		{name: "name with spaces and parentheses", in: statLine(7, "a) (b c)", 2, 1, 2, 0, 0),
			want: Stat{PID: 7, Comm: "a) (b c)", State: 'S', PPID: 2, User: 10 * time.Millisecond, System: 20 * time.Millisecond}},
		{name: "no name", in: "42 wscad S 1 2 3", err: true},
		{name: "no pid", in: "(wscad) S 1 1 1 0 -1 0 0 0 0 0 1 2 3 4", err: true},
		{name: "short", in: "42 (wscad) S 1 1 1 0", err: true},
		{name: "bad ppid", in: strings.Replace(statLine(42, "x", 1, 1, 1, 1, 1), ") S 1 ", ") S -1 ", 1), err: true},
		{name: "bad utime", in: statLine(42, "x", 1, -5, 1, 1, 1), err: true},
		{name: "state of two letters", in: strings.Replace(statLine(42, "x", 1, 1, 1, 1, 1), ") S ", ") SS ", 1), err: true},
		{name: "huge", in: strings.Replace(statLine(42, "x", 1, 1, 1, 1, 1), " 1 1 1 1 20", " 9223372036854775807 1 1 1 20", 1), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if tc.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err %v, want ErrMalformed (%+v)", err, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			if got.Own() != got.User+got.System || got.Total() != got.Own()+got.ChildUser+got.ChildSystem {
				t.Fatalf("sums of %+v", got)
			}
		})
	}
}

// fakeProc writes stat files under a temporary /proc.
func fakeProc(t *testing.T, stats map[int]string) Proc {
	t.Helper()
	root := t.TempDir()
	for pid, line := range stats {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "self"), 0o755) // not a pid: skipped
	return Proc{Root: root}
}

// TestTree: a root, its children and grandchildren are summed with their
// waited-for children's time; other processes are not; a missing root is
// an error.
func TestTree(t *testing.T) {
	p := fakeProc(t, map[int]string{
		1:   statLine(1, "init", 0, 1000, 1000, 1000, 1000),
		100: statLine(100, "postgres", 1, 10, 5, 100, 50), // postmaster: 15 own, 150 reaped children
		101: statLine(101, "postgres", 100, 20, 10, 0, 0),
		102: statLine(102, "postgres", 100, 30, 0, 0, 0),
		103: statLine(103, "postgres", 102, 1, 1, 0, 0), // grandchild
		200: statLine(200, "other", 1, 500, 500, 0, 0),
		201: statLine(201, "other", 200, 500, 500, 0, 0),
	})
	got, err := p.Tree(100)
	if err != nil {
		t.Fatal(err)
	}
	if want := (15 + 150 + 30 + 30 + 2) * clockTick; got.CPU != want || got.Procs != 4 {
		t.Fatalf("tree %+v, want %v in 4 processes", got, want)
	}
	two, err := p.Tree(101, 200)
	if err != nil {
		t.Fatal(err)
	}
	if want := (30 + 1000 + 1000) * clockTick; two.CPU != want || two.Procs != 3 {
		t.Fatalf("two trees %+v, want %v in 3", two, want)
	}
	if _, err := p.Tree(999); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing root: %v", err)
	}
	if got := p.Sum(101, 102, 999); got != 60*clockTick {
		t.Fatalf("Sum %v", got)
	}
	if _, err := (Proc{Root: filepath.Join(t.TempDir(), "none")}).Tree(1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no /proc: %v", err)
	}
}

func TestParseNetTCP(t *testing.T) {
	// The address words are in host byte order: build them so.
	le := [4]byte{127, 0, 0, 1}
	word := func(b [4]byte) string {
		var w [4]byte
		if isBigEndian() {
			w = b
		} else {
			w = [4]byte{b[3], b[2], b[1], b[0]}
		}
		return strings.ToUpper(hexString(w[:]))
	}
	v6lo := "00000000" + "00000000" + "00000000" + word([4]byte{0, 0, 0, 1})
	in := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: " + word(le) + ":1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0 100 0 0 10 0\n" +
		"   1: " + word(le) + ":D431 " + word(le) + ":1538 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0 20 4 30 10 -1\n" +
		"   2: " + v6lo + ":0050 " + strings.Repeat("0", 32) + ":0000 0A 00000000:00000000 00:00000000 00000000  1000        0 9 1\n"
	got, err := ParseNetTCP(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("0.0.0.0:0"), StateListen, 12345},
		{netip.MustParseAddrPort("127.0.0.1:54321"), netip.MustParseAddrPort("127.0.0.1:5432"), StateEstablished, 777},
		{netip.MustParseAddrPort("[::1]:80"), netip.MustParseAddrPort("[::]:0"), StateListen, 9},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{
		"h\n 0: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0\n",                       // 9 fields
		"h\n 0: 0100007F-1F90 00000000:0000 0A 0 0 0 0 0 1\n",                     // no colon
		"h\n 0: 0100007:1F90 00000000:0000 0A 0 0 0 0 0 1\n",                      // 7 hex digits
		"h\n 0: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 x\n",                     // inode
		"h\n 0: 0100007F:1F90 00000000:0000 ZZ 0 0 0 0 0 1\n",                     // state
		"h\n 0: 0100007F:FFFFF 00000000:0000 0A 0 0 0 0 0 1\n",                    // port
		"h\n 0: 0100007G:1F90 00000000:0000 0A 0 0 0 0 0 1\n",                     // hex
		"h\n 0: 0100007F:1F90 0000000000000000000000000000000:0 0A 0 0 0 0 0 1\n", // 31 digits
	} {
		if _, err := ParseNetTCP(strings.NewReader(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func isBigEndian() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func requireLinuxProc(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux /proc")
	}
}

// TestListenerAndPeers: on the real /proc, this process is found as the
// listener of its port and as connected to it; a port nobody listens on
// is ErrUnavailable.
func TestListenerAndPeers(t *testing.T) {
	requireLinuxProc(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var p Proc
	pid, err := p.Listener(port)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("Listener(%d) = %d, %v; want %d", port, pid, err, os.Getpid())
	}
	peers, err := p.LoopbackPeers(os.Getpid())
	if err != nil || !slices.Contains(peers, port) {
		t.Fatalf("LoopbackPeers = %v, %v; want %d among them", peers, err, port)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := uint16(ln2.Addr().(*net.TCPAddr).Port)
	ln2.Close()
	if pid, err := p.Listener(free); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Listener of a closed port: %d, %v", pid, err)
	}
}

// TestSelfAndStat: this process's CPU grows with work, and /proc agrees it
// is this process.
func TestSelfAndStat(t *testing.T) {
	requireLinuxProc(t)
	before, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(nil)
	for range 200_000 {
		h = sha256.Sum256(h[:])
	}
	after, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU %v then %v", before, after)
	}
	s, err := Proc{}.Stat(os.Getpid())
	if err != nil || s.PID != os.Getpid() || s.PPID != os.Getppid() {
		t.Fatalf("Stat: %+v, %v", s, err)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"example.org": false, "10.0.0.1": false, "": false, "::": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("%q: %v", host, got)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(42, "wscad", 1, 150, 50, 7, 3)))
	f.Add([]byte(statLine(7, "a) (b", 2, 1, 2, 0, 0)))
	f.Add([]byte("1 () S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if s.PID < 0 || s.PPID < 0 || s.User < 0 || s.System < 0 || s.ChildUser < 0 || s.ChildSystem < 0 || s.Total() < 0 {
			t.Fatalf("negative: %+v", s)
		}
	})
}

func FuzzParseNetTCP(f *testing.F) {
	f.Add("h\n 0: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 12345\n")
	f.Add("h\n 2: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 9 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		socks, err := ParseNetTCP(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		for _, so := range socks {
			if !so.Local.Addr().IsValid() || !so.Remote.Addr().IsValid() {
				t.Fatalf("invalid address: %+v", so)
			}
		}
	})
}
