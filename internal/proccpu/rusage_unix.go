//go:build unix

package proccpu

import (
	"syscall"
	"time"
)

// Self returns this process's CPU time (user + system, all threads), from
// getrusage(2): precise to a microsecond on Linux.
func Self() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
