package testenv

import (
	"slices"
	"testing"
	"time"
)

// Interleave benchmarks raw (the baseline) and dev (our layer) alternately,
// one call each, swapping the order every iteration, and reports the median
// time of each and the throughput ratio device/raw (raw median ÷ device
// median). Load that comes and goes on the machine hits both alike, and a
// stall moves a median far less than a mean, so this ratio is steadier than
// the ratio of two sub-benchmarks run one after the other. ns/op is the
// time of the pair.
func Interleave(b *testing.B, raw, dev func() error) {
	b.Helper()
	var tRaw, tDev []time.Duration
	for i := 0; b.Loop(); i++ {
		for j := range 2 {
			f, t := raw, &tRaw
			if (i+j)%2 == 1 {
				f, t = dev, &tDev
			}
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			*t = append(*t, time.Since(start))
		}
	}
	mRaw, mDev := Median(tRaw), Median(tDev)
	b.ReportMetric(float64(mRaw.Nanoseconds()), "raw-p50-ns/op")
	b.ReportMetric(float64(mDev.Nanoseconds()), "device-p50-ns/op")
	b.ReportMetric(float64(mRaw)/float64(mDev), "device/raw")
}

// Median returns the median of ds without reordering it.
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
