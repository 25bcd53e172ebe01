package pin

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.attempts); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		m.attempts = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return m, nil
}

func (m *metrics) count(outcome string) { m.attempts.WithLabelValues(outcome).Inc() }
