package dispatch

import "github.com/wsca/wsca/wscd"

// SetEvidence replaces the dispatcher's evidence recorder (nil: none), for
// the benchmark that measures the sign path with the evidence log off;
// production always has it on. Call it only while nothing is served.
func SetEvidence(d *Dispatcher, r wscd.Recorder) { d.cfg.Evidence = r }
