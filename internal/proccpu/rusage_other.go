//go:build !unix

package proccpu

import "time"

// Self is not available without getrusage(2).
func Self() (time.Duration, error) { return 0, ErrUnavailable }
