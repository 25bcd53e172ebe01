package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsca/wsca/internal/proccpu"
)

// benchCPU measures the CPU time the server, its database and this load
// generator spend during a run, from /proc and getrusage(2). Parts it
// cannot measure are left out of the summary, with a note saying why.
type benchCPU struct {
	proc      proccpu.Proc
	serverPID int
	dbRoots   []int
	notes     []string
}

// benchCPUSample is one snapshot; a negative value was not read.
type benchCPUSample struct {
	server, db, client time.Duration
	dbProcs            int
}

// benchCPUSummary is the CPU part of the summary: milliseconds of CPU per
// request (successful or not) over the run.
type benchCPUSummary struct {
	ServerPID int      `json:"server_pid,omitempty"`
	ServerCPU *float64 `json:"server_cpu_ms_per_op,omitempty"`
	DBPIDs    []int    `json:"db_pids,omitempty"`
	DBProcs   int      `json:"db_processes,omitempty"`
	DBCPU     *float64 `json:"db_cpu_ms_per_op,omitempty"`
	ClientCPU *float64 `json:"client_cpu_ms_per_op,omitempty"`
	CPUNotes  []string `json:"cpu_notes,omitempty"`
}

// benchValidPIDs checks a --server-pid (one) or --db-pids (list) value.
func benchValidPIDs(v string, list bool) bool {
	if v == "auto" || v == "none" {
		return true
	}
	parts := []string{v}
	if list {
		parts = strings.Split(v, ",")
	}
	for _, p := range parts {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err != nil || n <= 0 {
			return false
		}
	}
	return true
}

// newBenchCPU finds the processes to measure, as the options say. It runs
// after the setup, when the server has its database connections open.
func newBenchCPU(proc proccpu.Proc, o *benchOptions) *benchCPU {
	c := &benchCPU{proc: proc}
	switch o.serverPID {
	case "none":
	case "auto":
		u, err := url.Parse(o.url)
		if err != nil || !proccpu.IsLoopbackHost(u.Hostname()) {
			c.notes = append(c.notes, "server CPU: --url is not loopback; give --server-pid")
			break
		}
		port, err := strconv.ParseUint(u.Port(), 10, 16)
		if u.Port() == "" {
			port, err = map[string]uint64{"http": 80, "https": 443}[u.Scheme], nil
		}
		if err != nil || port == 0 {
			c.notes = append(c.notes, "server CPU: no port in --url; give --server-pid")
			break
		}
		if c.serverPID, err = proc.Listener(uint16(port)); err != nil {
			c.notes = append(c.notes, fmt.Sprintf("server CPU: %v; give --server-pid", err))
		}
	default:
		c.serverPID, _ = strconv.Atoi(o.serverPID)
	}
	if c.serverPID == os.Getpid() {
		c.notes = append(c.notes, "server CPU: the server runs in this process, its CPU includes the load generator's")
	}
	switch o.dbPIDs {
	case "none":
	case "auto":
		if c.serverPID == 0 {
			break
		}
		ports, err := proc.LoopbackPeers(c.serverPID)
		if err != nil {
			c.notes = append(c.notes, fmt.Sprintf("db CPU: %v", err))
			break
		}
		for _, port := range ports {
			pid, err := proc.Listener(port)
			if err != nil || pid == c.serverPID {
				continue
			}
			if s, err := proc.Stat(pid); err == nil && (s.Comm == "postgres" || s.Comm == "postmaster") {
				c.dbRoots = append(c.dbRoots, pid)
			}
		}
	default:
		for p := range strings.SplitSeq(o.dbPIDs, ",") {
			n, _ := strconv.Atoi(strings.TrimSpace(p))
			c.dbRoots = append(c.dbRoots, n)
		}
	}
	return c
}

func (c *benchCPU) snapshot() benchCPUSample {
	s := benchCPUSample{server: -1, db: -1, client: -1}
	if c.serverPID != 0 {
		if st, err := c.proc.Stat(c.serverPID); err == nil {
			s.server = st.Total()
		} else {
			c.notes = append(c.notes, fmt.Sprintf("server CPU: %v", err))
		}
	}
	if len(c.dbRoots) > 0 {
		if t, err := c.proc.Tree(c.dbRoots...); err == nil {
			s.db, s.dbProcs = t.CPU, t.Procs
		} else {
			c.notes = append(c.notes, fmt.Sprintf("db CPU: %v", err))
		}
	}
	if d, err := proccpu.Self(); err == nil {
		s.client = d
	}
	return s
}

// summary divides what was spent between two snapshots by the requests.
func (c *benchCPU) summary(a, b benchCPUSample, requests uint64) benchCPUSummary {
	out := benchCPUSummary{ServerPID: c.serverPID, DBPIDs: c.dbRoots, DBProcs: b.dbProcs, CPUNotes: c.notes}
	perOp := func(x, y time.Duration) *float64 {
		if x < 0 || y < 0 || requests == 0 {
			return nil
		}
		ms := float64(y-x) / float64(time.Millisecond) / float64(requests)
		return &ms
	}
	out.ServerCPU = perOp(a.server, b.server)
	out.DBCPU = perOp(a.db, b.db)
	out.ClientCPU = perOp(a.client, b.client)
	if out.ServerCPU == nil {
		out.ServerPID = 0
	}
	if out.DBCPU == nil {
		out.DBPIDs, out.DBProcs = nil, 0
	}
	return out
}

func (s benchCPUSummary) text(w io.Writer) {
	ms := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.3fms", *v)
	}
	fmt.Fprintf(w, "CPU:         server CPU/op %s", ms(s.ServerCPU))
	if s.ServerCPU != nil {
		fmt.Fprintf(w, " (pid %d)", s.ServerPID)
	}
	fmt.Fprintf(w, "  db CPU/op %s", ms(s.DBCPU))
	if s.DBCPU != nil {
		fmt.Fprintf(w, " (pids %s, %d processes)", strings.Trim(fmt.Sprint(s.DBPIDs), "[]"), s.DBProcs)
	}
	fmt.Fprintf(w, "  client CPU/op %s\n", ms(s.ClientCPU))
	for _, n := range s.CPUNotes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
