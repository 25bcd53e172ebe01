package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/wsca/wsca/internal/testenv"
)

// fuzzIterations is how many inputs fuzz.mjs tries per seed.
const fuzzIterations = 20000

// TestExtensionParsers fuzzes the extension's parsers of page input
// (web/extension/wire.js, dcql.js: SD-JWT VCs, DCQL queries, DC API request
// data, the bytes encoding) under Node with fuzz.mjs: seeds and seeded
// random mutations; a parser may return a well-formed value or throw its one
// error kind, nothing else.
func TestExtensionParsers(t *testing.T) {
	node := testenv.Node(t, "node", ".")
	for _, seed := range []int{1, 2, 3} {
		t.Run("seed "+strconv.Itoa(seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "fuzz.mjs", strconv.Itoa(fuzzIterations), strconv.Itoa(seed))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("node fuzz.mjs: %v\n%s%s", err, stdout.String(), stderr.String())
			}
			var res struct {
				Iterations int               `json:"iterations"`
				Failed     int               `json:"failed"`
				Failures   []json.RawMessage `json:"failures"`
			}
			if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
				t.Fatalf("fuzz.mjs output: %v\n%s", err, stdout.String())
			}
			if res.Iterations != fuzzIterations || res.Failed != 0 {
				t.Fatalf("%d of %d inputs failed; first ones:\n%s", res.Failed, res.Iterations, res.Failures)
			}
		})
	}
}
