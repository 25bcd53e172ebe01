package dispatch

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts R2PS outcomes by profile, type and code ("OK" for a
// success). A refusal before authentication has no profile.
type metrics struct {
	outcomes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wsca", Subsystem: "r2ps", Name: "requests_total",
		Help: "R2PS requests by profile, type and outcome code (OK for success).",
	}, []string{"profile", "type", "code"})}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.outcomes); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		m.outcomes = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return m, nil
}

// outcome counts one request. typ is "" when the request was refused
// before its type was known; unknown types are folded into "other" so a
// client cannot grow the label set.
func (m *metrics) outcome(profile, typ, code string) {
	if _, ok := policies[typ]; !ok && typ != "" {
		typ = "other"
	}
	m.outcomes.WithLabelValues(profile, typ, code).Inc()
}
