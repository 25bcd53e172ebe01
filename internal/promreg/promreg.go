// Package promreg registers Prometheus collectors that several instances
// of a component (two dispatchers in one test process, a rebuilt stack)
// may register on one registry: the first registration wins and later ones
// share its collector.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterVec registers c on reg (nil: none) and returns the collector to
// use: c, or the equal one registered before.
func CounterVec(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		return existing, nil
	}
	return c, nil
}
