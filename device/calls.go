package device

import (
	"sort"
	"sync/atomic"
)

// CallCounter counts primitive device calls by name. Names are fixed when
// it is made, so counting is one atomic add with no lock; counting a name
// that was not declared is a programming error and panics.
type CallCounter struct {
	counts map[string]*atomic.Uint64
}

// NewCallCounter returns a counter for the given call names.
func NewCallCounter(names ...string) *CallCounter {
	c := &CallCounter{counts: make(map[string]*atomic.Uint64, len(names))}
	for _, n := range names {
		c.counts[n] = new(atomic.Uint64)
	}
	return c
}

// Inc counts one call.
func (c *CallCounter) Inc(name string) {
	n, ok := c.counts[name]
	if !ok {
		panic("device: internal error: undeclared call " + name)
	}
	n.Add(1)
}

// Snapshot returns the current counts.
func (c *CallCounter) Snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(c.counts))
	for k, v := range c.counts {
		m[k] = v.Load()
	}
	return m
}

// Names returns the declared call names, sorted.
func (c *CallCounter) Names() []string {
	names := make([]string, 0, len(c.counts))
	for k := range c.counts {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// CallsDelta returns after−before for every name in after with a change;
// tests use it to state how many device calls one operation made.
func CallsDelta(before, after map[string]uint64) map[string]uint64 {
	d := make(map[string]uint64)
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}
