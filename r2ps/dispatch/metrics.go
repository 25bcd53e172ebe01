package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/internal/promreg"
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
	var err error
	if m.outcomes, err = promreg.CounterVec(reg, m.outcomes); err != nil {
		return nil, err
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
