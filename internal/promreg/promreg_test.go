package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCounterVec(t *testing.T) {
	reg := prometheus.NewRegistry()
	mk := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"l"})
	}
	a, err := CounterVec(reg, mk())
	if err != nil {
		t.Fatal(err)
	}
	b, err := CounterVec(reg, mk())
	if err != nil || b != a {
		t.Fatalf("second registration: %v, same collector %v", err, b == a)
	}
	// Same name, other labels: a real conflict.
	if _, err := CounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"m"})); err == nil {
		t.Fatal("conflicting registration accepted")
	}
	if c, err := CounterVec(nil, mk()); err != nil || c == nil {
		t.Fatalf("nil registry: %v", err)
	}
}
