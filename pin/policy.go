package pin

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxAttempts is the number of failures that lock a counter when
// Policy.MaxAttempts is zero.
const DefaultMaxAttempts = 5

// maxPolicyCount bounds MaxAttempts and Delay.After, far above any sane
// policy, so that a typo cannot make a counter unbounded in practice.
const maxPolicyCount = 1000

// Policy is the PIN attempt policy.
type Policy struct {
	// MaxAttempts is the number of failures after which the counter locks
	// until an operator unlocks it: the MaxAttempts-th failure is the last
	// attempt admitted. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// Delays are escalating waits: after After failures, the next attempt
	// must wait Wait. The entry with the largest After not above the
	// failure count applies. After is strictly increasing, below
	// MaxAttempts, and Wait never decreases.
	Delays []Delay
}

// Delay is one step of a Policy's escalating waits.
type Delay struct {
	After int
	Wait  time.Duration
}

// String returns the command-line form of d, such as "3:1m0s".
func (d Delay) String() string {
	return strconv.Itoa(d.After) + ":" + d.Wait.String()
}

// Check returns the ErrPolicy error New would give for p, or nil, so that
// a command can refuse a bad policy before it opens anything.
func (p Policy) Check() error {
	_, err := p.withDefaults()
	return err
}

// withDefaults returns p with defaults filled in, or an ErrPolicy error.
func (p Policy) withDefaults() (Policy, error) {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > maxPolicyCount {
		return Policy{}, fmt.Errorf("%w: max attempts %d not in 1..%d", ErrPolicy, p.MaxAttempts, maxPolicyCount)
	}
	if err := checkDelays(p.Delays); err != nil {
		return Policy{}, err
	}
	if n := len(p.Delays); n > 0 && p.Delays[n-1].After >= p.MaxAttempts {
		return Policy{}, fmt.Errorf("%w: delay after %d failures, but %d lock", ErrPolicy, p.Delays[n-1].After, p.MaxAttempts)
	}
	p.Delays = append([]Delay(nil), p.Delays...)
	return p, nil
}

// wait returns the wait imposed after failures failures (0: none).
func (p Policy) wait(failures int) time.Duration {
	var w time.Duration
	for _, d := range p.Delays {
		if d.After > failures {
			break
		}
		w = d.Wait
	}
	return w
}

func checkDelays(ds []Delay) error {
	for i, d := range ds {
		if d.After < 1 || d.After > maxPolicyCount {
			return fmt.Errorf("%w: delay %v: failure count not in 1..%d", ErrPolicy, d, maxPolicyCount)
		}
		if d.Wait <= 0 {
			return fmt.Errorf("%w: delay %v: wait must be positive", ErrPolicy, d)
		}
		if i > 0 && d.After <= ds[i-1].After {
			return fmt.Errorf("%w: delay %v: failure counts must increase", ErrPolicy, d)
		}
		if i > 0 && d.Wait < ds[i-1].Wait {
			return fmt.Errorf("%w: delay %v: waits must not decrease", ErrPolicy, d)
		}
	}
	return nil
}

// ParseDelays parses the command-line form of Policy.Delays: comma-separated
// failures:wait pairs such as "3:1m,4:5m", with failures a decimal count
// without sign or leading zero and wait a positive time.ParseDuration
// duration without sign. Spaces and empty items are refused. The empty
// string means no delays. Errors wrap ErrPolicy.
func ParseDelays(s string) ([]Delay, error) {
	if s == "" {
		return nil, nil
	}
	var ds []Delay
	for item := range strings.SplitSeq(s, ",") {
		d, err := parseDelay(item)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	if err := checkDelays(ds); err != nil {
		return nil, err
	}
	return ds, nil
}

func parseDelay(item string) (Delay, error) {
	after, wait, ok := strings.Cut(item, ":")
	if !ok {
		return Delay{}, fmt.Errorf("%w: delay %q: want failures:wait", ErrPolicy, item)
	}
	if after == "" || len(after) > 4 || after[0] == '0' || strings.Trim(after, "0123456789") != "" {
		return Delay{}, fmt.Errorf("%w: delay %q: failures must be a positive decimal count", ErrPolicy, item)
	}
	n, err := strconv.Atoi(after)
	if err != nil {
		return Delay{}, fmt.Errorf("%w: delay %q: %v", ErrPolicy, item, err)
	}
	if wait == "" || wait[0] == '+' || wait[0] == '-' {
		return Delay{}, fmt.Errorf("%w: delay %q: wait must be an unsigned duration", ErrPolicy, item)
	}
	w, err := time.ParseDuration(wait)
	if err != nil {
		return Delay{}, fmt.Errorf("%w: delay %q: %v", ErrPolicy, item, err)
	}
	return Delay{After: n, Wait: w}, nil
}

// FormatDelays returns the command-line form of ds, which ParseDelays
// parses back to ds.
func FormatDelays(ds []Delay) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}
