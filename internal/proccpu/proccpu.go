// Package proccpu reads the CPU time of processes from Linux's /proc: one
// process, a process and its descendants (a database cluster under its
// postmaster), this process, and the owner of a listening TCP port. The
// load generator (wsca bench) and the benchmarks use it to put a server's
// CPU per operation next to its throughput.
//
// On systems without /proc every reader fails with an error wrapping
// [ErrUnavailable].
package proccpu

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrUnavailable is wrapped by the errors of readers that found no /proc
// or no such process.
var ErrUnavailable = errors.New("proccpu: not available")

// ErrMalformed is wrapped by the errors of the parsers.
var ErrMalformed = errors.New("proccpu: malformed /proc data")

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports (it is part of the kernel's ABI).
const clockTick = 10 * time.Millisecond

// Stat is what wsca needs of /proc/<pid>/stat.
type Stat struct {
	PID   int
	Comm  string
	State byte
	PPID  int
	// User and System are the process's own CPU time (all threads, also
	// those that exited); ChildUser and ChildSystem that of its children
	// it has waited for.
	User, System, ChildUser, ChildSystem time.Duration
}

// Own is the process's own CPU time.
func (s Stat) Own() time.Duration { return s.User + s.System }

// Total is the process's CPU time and its waited-for children's.
func (s Stat) Total() time.Duration { return s.User + s.System + s.ChildUser + s.ChildSystem }

// ParseStat parses the contents of /proc/<pid>/stat. The command name is
// in parentheses and may itself hold spaces and parentheses: the fields
// start after the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || close < open {
		return Stat{}, fmt.Errorf("%w: stat: no command name", ErrMalformed)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid < 0 {
		return Stat{}, fmt.Errorf("%w: stat: pid", ErrMalformed)
	}
	// Fields after the name, numbered from 3 as in proc(5): state (3),
	// ppid (4), ..., utime (14), stime (15), cutime (16), cstime (17).
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 15 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: stat: %d fields", ErrMalformed, len(f))
	}
	s := Stat{PID: pid, Comm: string(b[open+1 : close]), State: f[0][0]}
	if s.PPID, err = strconv.Atoi(f[1]); err != nil || s.PPID < 0 {
		return Stat{}, fmt.Errorf("%w: stat: ppid", ErrMalformed)
	}
	for i, d := range []*time.Duration{&s.User, &s.System, &s.ChildUser, &s.ChildSystem} {
		// cutime and cstime are signed in the kernel's format, never negative.
		n, err := strconv.ParseInt(f[11+i], 10, 64)
		if err != nil || n < 0 || n > int64(1<<62)/int64(clockTick) {
			return Stat{}, fmt.Errorf("%w: stat: field %d", ErrMalformed, 14+i)
		}
		*d = time.Duration(n) * clockTick
	}
	return s, nil
}

// Proc reads a /proc file system mounted at Root ("" means /proc).
type Proc struct{ Root string }

func (p Proc) path(elem ...string) string {
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

func (p Proc) read(elem ...string) ([]byte, error) {
	b, err := os.ReadFile(p.path(elem...))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return b, err
}

// Stat reads /proc/<pid>/stat.
func (p Proc) Stat(pid int) (Stat, error) {
	b, err := p.read(strconv.Itoa(pid), "stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// pids lists the numeric entries of /proc.
func (p Proc) pids() ([]int, error) {
	ents, err := os.ReadDir(p.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// Tree is a snapshot of the CPU time of process trees.
type Tree struct {
	// CPU is the sum over the roots and their live descendants of each
	// one's own and waited-for children's time: a descendant that exits
	// between two snapshots moves into its parent's child time, so the
	// difference of two snapshots counts it once.
	CPU time.Duration
	// Procs counts the processes summed.
	Procs int
}

// Tree sums the CPU time of the processes roots and all their
// descendants. A root that does not exist is an error.
func (p Proc) Tree(roots ...int) (Tree, error) {
	var t Tree
	stats := map[int]Stat{}
	for _, r := range roots {
		s, err := p.Stat(r)
		if err != nil {
			return Tree{}, fmt.Errorf("proccpu: process %d: %w", r, err)
		}
		stats[r] = s
	}
	pids, err := p.pids()
	if err != nil {
		return Tree{}, err
	}
	children := map[int][]Stat{}
	for _, pid := range pids {
		s, err := p.Stat(pid)
		if err != nil {
			continue // gone since the listing, or not ours to read
		}
		children[s.PPID] = append(children[s.PPID], s)
	}
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if _, seen := stats[c.PID]; !seen {
				stats[c.PID] = c
				queue = append(queue, c.PID)
			}
		}
	}
	for _, s := range stats {
		t.CPU += s.Total()
		t.Procs++
	}
	return t, nil
}

// Sum sums the own CPU time of the processes pids; one that does not
// exist (any more) counts as 0.
func (p Proc) Sum(pids ...int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		if s, err := p.Stat(pid); err == nil {
			d += s.Own()
		}
	}
	return d
}

// Socket is one line of /proc/net/tcp or tcp6.
type Socket struct {
	Local, Remote netip.AddrPort
	// State is the kernel's TCP state: 0x01 established, 0x0A listen.
	State byte
	Inode uint64
}

// TCP socket states of /proc/net/tcp.
const (
	StateEstablished = 0x01
	StateListen      = 0x0A
)

// ParseNetTCP parses /proc/net/tcp or /proc/net/tcp6: a header line, then
// "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...", with
// addresses as hex words in the host's byte order and ports in hex.
func ParseNetTCP(r io.Reader) ([]Socket, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	var out []Socket
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("%w: net/tcp: %d fields", ErrMalformed, len(f))
		}
		var s Socket
		var err error
		if s.Local, err = parseHexAddr(f[1]); err != nil {
			return nil, err
		}
		if s.Remote, err = parseHexAddr(f[2]); err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: net/tcp: state", ErrMalformed)
		}
		s.State = byte(st)
		if s.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
			return nil, fmt.Errorf("%w: net/tcp: inode", ErrMalformed)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: net/tcp: %w", ErrMalformed, err)
	}
	return out, nil
}

// parseHexAddr parses "0100007F:1F90": an IPv4 or IPv6 address as 32-bit
// words in host byte order, a colon, the port in hex.
func parseHexAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, fmt.Errorf("%w: net/tcp: address %q", ErrMalformed, s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: net/tcp: address %q", ErrMalformed, s)
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// sockets reads the TCP sockets of the network namespace of /proc/self
// (or of pid, when pid > 0).
func (p Proc) sockets(pid int) ([]Socket, error) {
	dir := "net"
	if pid > 0 {
		dir = filepath.Join(strconv.Itoa(pid), "net")
	}
	var all []Socket
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := p.read(dir, name)
		if err != nil {
			if errors.Is(err, ErrUnavailable) && name == "tcp6" {
				continue // no IPv6
			}
			return nil, err
		}
		s, err := ParseNetTCP(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		all = append(all, s...)
	}
	return all, nil
}

// socketInodes returns the inodes of the sockets process pid has open;
// processes this one may not inspect have none.
func (p Proc) socketInodes(pid int) map[uint64]bool {
	dir := p.path(strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(l, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64); err == nil {
				out[n] = true
			}
		}
	}
	return out
}

// Listener returns the process that listens on TCP port (on any local
// address): the topmost of the processes holding the socket, as children
// may inherit it. It fails with [ErrUnavailable] when none is found,
// which includes a listener this process may not inspect.
func (p Proc) Listener(port uint16) (int, error) {
	socks, err := p.sockets(0)
	if err != nil {
		return 0, err
	}
	want := map[uint64]bool{}
	for _, s := range socks {
		if s.State == StateListen && s.Local.Port() == port && s.Inode != 0 {
			want[s.Inode] = true
		}
	}
	if len(want) == 0 {
		return 0, fmt.Errorf("%w: nothing listens on port %d", ErrUnavailable, port)
	}
	pids, err := p.pids()
	if err != nil {
		return 0, err
	}
	holders := map[int]bool{}
	for _, pid := range pids {
		for ino := range p.socketInodes(pid) {
			if want[ino] {
				holders[pid] = true
				break
			}
		}
	}
	for pid := range holders {
		if s, err := p.Stat(pid); err == nil && !holders[s.PPID] {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%w: no process of ours listens on port %d", ErrUnavailable, port)
}

// LoopbackPeers returns the ports that process pid is connected to on a
// loopback address (its established TCP connections to local servers).
func (p Proc) LoopbackPeers(pid int) ([]uint16, error) {
	mine := p.socketInodes(pid)
	if len(mine) == 0 {
		return nil, nil
	}
	socks, err := p.sockets(pid)
	if err != nil {
		return nil, err
	}
	var ports []uint16
	for _, s := range socks {
		if s.State == StateEstablished && mine[s.Inode] && isLoopback(s.Remote.Addr()) && !slices.Contains(ports, s.Remote.Port()) {
			ports = append(ports, s.Remote.Port())
		}
	}
	slices.Sort(ports)
	return ports, nil
}

func isLoopback(a netip.Addr) bool { return a.Unmap().IsLoopback() }

// IsLoopbackHost reports whether host (of a URL or DSN) names this
// machine's loopback: localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
