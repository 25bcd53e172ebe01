package pin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/internal/promreg"
)

// metrics counts what happens to PIN attempts, by outcome: "admitted" (KE2
// issued, counted), "refused_locked", "refused_wait", "wrong" (KE3 did not
// prove the PIN), "correct", and "lock" for the attempt that reached the
// limit.
type metrics struct {
	attempts *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wsca", Subsystem: "pin", Name: "attempts_total",
		Help: "PIN attempts by outcome: admitted, refused_locked, refused_wait, wrong, correct, lock.",
	}, []string{"outcome"})}
	for _, o := range []string{"admitted", "refused_locked", "refused_wait", "wrong", "correct", "lock"} {
		m.attempts.WithLabelValues(o)
	}
	var err error
	if m.attempts, err = promreg.CounterVec(reg, m.attempts); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) count(outcome string) { m.attempts.WithLabelValues(outcome).Inc() }
