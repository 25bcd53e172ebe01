package wscd

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
)

const (
	opGenerate = "generate"
	opSign     = "sign"
	opECDH     = "ecdh"
	opList     = "list"
	opDestroy  = "destroy"
)

// Metrics counts key operations and device calls for Prometheus.
type Metrics struct {
	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the key-service metrics and a collector of dev's
// primitive call counts (wsca_device_calls_total) on reg.
func NewMetrics(reg prometheus.Registerer, dev device.Device) (*Metrics, error) {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsca_key_operations_total",
			Help: "Key operations by operation and result (ok, client_error, unavailable).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wsca_key_operation_duration_seconds",
			Help:    "Key operation latency, including ownership checks in the store.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14),
		}, []string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.ops, m.duration, &callCollector{dev: dev}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(op string, start time.Time, err *error) {
	if m == nil {
		return
	}
	result := "ok"
	switch {
	case *err == nil:
	case errors.Is(*err, ErrUnavailable):
		result = "unavailable"
	default:
		result = "client_error"
	}
	m.ops.WithLabelValues(op, result).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// callCollector exports the device's own call counters at scrape time.
type callCollector struct{ dev device.Device }

var callsDesc = prometheus.NewDesc("wsca_device_calls_total",
	"Primitive device calls (for PKCS#11: one per C_ function call) since start.",
	[]string{"backend", "call"}, nil)

func (c *callCollector) Describe(ch chan<- *prometheus.Desc) { ch <- callsDesc }

func (c *callCollector) Collect(ch chan<- prometheus.Metric) {
	backend := c.dev.Info().Backend
	for name, n := range c.dev.Calls() {
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(n), backend, name)
	}
}
