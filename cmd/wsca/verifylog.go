package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/evidence/logverify"
)

// verifyLogMax bounds what verify-log reads of a file or a response.
const verifyLogMax = 64 << 10

// verifyLog checks the evidence log offline (docs/evidence.md): a
// checkpoint's signature, the inclusion of a leaf, the consistency of two
// checkpoints, from files, with no server and no secret; with --server it
// fetches what it checks first.
func verifyLog(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("wsca verify-log", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	key := fs.String("key", "", "the log's verifier `key` (name+hash+base64), or a file holding it")
	cpFile := fs.String("checkpoint", "", "signed checkpoint `file` (offline)")
	oldFile := fs.String("old-checkpoint", "", "an earlier signed checkpoint `file`: check that the log extends it")
	consFile := fs.String("consistency", "", "consistency proof `file` (JSON) from the old checkpoint to the checkpoint (offline)")
	leafFile := fs.String("leaf", "", "leaf `file` (the entry's bytes, from the record's holder or the operator) to prove included")
	inclFile := fs.String("inclusion", "", "inclusion proof `file` (JSON) of the leaf in the checkpoint (offline)")
	server := fs.String("server", "", "fetch the checkpoint and proofs from this wscad base `URL` first")
	index := fs.Int64("index", -1, "with --server and --leaf: prove the leaf included at this `index`")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(e, fs, args, 0, nil); err != nil {
		return err
	}
	if (*server == "") == (*cpFile == "") {
		fmt.Fprintln(e.stderr, "wsca verify-log: give --checkpoint (offline) or --server")
		return errUsage
	}
	var (
		src verifySource
		old []byte
		err error
	)
	if *oldFile != "" {
		if old, err = readSmall(*oldFile); err != nil {
			return err
		}
	}
	if *server != "" {
		// Leaves name units: the server does not hand them out to anyone
		// (only the operator's admin API does), so the leaf comes from a
		// file, and the server gives the proofs.
		if (*index >= 0) != (*leafFile != "") {
			fmt.Fprintln(e.stderr, "wsca verify-log: with --server, --index goes with --leaf (the entry's bytes)")
			return errUsage
		}
		oldSize := int64(-1)
		if old != nil {
			oldSize = checkpointSize(old)
		}
		if src, err = fetchSource(ctx, e, *server, *key == "", *index, oldSize); err != nil {
			return err
		}
		if *leafFile != "" {
			if src.leaf, err = readSmall(*leafFile); err != nil {
				return err
			}
		}
	} else {
		if (*leafFile == "") != (*inclFile == "") || (*oldFile == "") != (*consFile == "") {
			fmt.Fprintln(e.stderr, "wsca verify-log: --leaf goes with --inclusion, --old-checkpoint with --consistency")
			return errUsage
		}
		for _, f := range []struct {
			name string
			dst  *[]byte
		}{{*cpFile, &src.checkpoint}, {*leafFile, &src.leaf}, {*inclFile, &src.inclusion}, {*consFile, &src.consistency}} {
			if f.name != "" {
				if *f.dst, err = readSmall(f.name); err != nil {
					return err
				}
			}
		}
	}
	if *key != "" {
		src.key = *key
		if !strings.Contains(*key, "+") {
			b, err := readSmall(*key)
			if err != nil {
				return err
			}
			src.key = string(b)
		}
	}
	res, err := src.verify(old)
	if err != nil {
		return err
	}
	return printResult(e, *asJSON, res, func(w io.Writer) {
		fmt.Fprintf(w, "checkpoint: %s, %d entries, root %s: signature OK\n", res.Origin, res.Size, res.Root)
		if res.Leaf != nil {
			fmt.Fprintf(w, "entry %d (%s, unit %q, at %s): included OK\n", res.Leaf.Index, res.Leaf.Type, res.Leaf.Unit, res.Leaf.Time.Format(time.RFC3339))
		}
		if res.OldSize > 0 {
			fmt.Fprintf(w, "consistency from %d entries: OK\n", res.OldSize)
		}
		fmt.Fprintln(w, "OK")
	})
}

// verifySource is what verify-log checks.
type verifySource struct {
	key                                      string
	checkpoint, leaf, inclusion, consistency []byte
}

type verifyResult struct {
	Origin  string        `json:"origin"`
	Size    int64         `json:"size"`
	Root    string        `json:"root"`
	Leaf    *verifiedLeaf `json:"leaf,omitempty"`
	OldSize int64         `json:"old_size,omitempty"`
}

type verifiedLeaf struct {
	Index   int64     `json:"index"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Unit    string    `json:"unit,omitempty"`
	Context string    `json:"context,omitempty"`
	KID     string    `json:"kid,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Data    string    `json:"data,omitempty"`
}

func (s verifySource) verify(old []byte) (verifyResult, error) {
	if s.key == "" {
		return verifyResult{}, errors.New("verify-log: no verifier key (--key)")
	}
	v, err := logverify.NewVerifier(s.key)
	if err != nil {
		return verifyResult{}, fmt.Errorf("verify-log: key: %w", err)
	}
	cp, err := logverify.OpenCheckpoint(s.checkpoint, v)
	if err != nil {
		return verifyResult{}, fmt.Errorf("verify-log: checkpoint: %w", err)
	}
	res := verifyResult{Origin: cp.Origin, Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:])}
	if s.leaf != nil {
		var p logverify.InclusionProof
		if err := strictJSON(s.inclusion, &p); err != nil {
			return verifyResult{}, fmt.Errorf("verify-log: inclusion proof: %w", err)
		}
		if err := logverify.VerifyInclusion(cp, s.leaf, p); err != nil {
			return verifyResult{}, fmt.Errorf("verify-log: entry %d: %w", p.Index, err)
		}
		l := &verifiedLeaf{Index: p.Index, Type: "not a wsca event"}
		if ev, err := event.Parse(s.leaf); err == nil {
			l.Type, l.Time, l.Unit, l.Context, l.KID, l.Actor = ev.Type.String(), ev.Time, ev.Unit, ev.Context, ev.Kid, ev.Actor
			if len(ev.Data) > 0 {
				l.Data = base64.StdEncoding.EncodeToString(ev.Data)
			}
		}
		res.Leaf = l
	}
	if old != nil {
		oc, err := logverify.OpenCheckpoint(old, v)
		if err != nil {
			return verifyResult{}, fmt.Errorf("verify-log: old checkpoint: %w", err)
		}
		var p logverify.ConsistencyProof
		if err := strictJSON(s.consistency, &p); err != nil {
			return verifyResult{}, fmt.Errorf("verify-log: consistency proof: %w", err)
		}
		if err := logverify.VerifyConsistency(oc, cp, p); err != nil {
			return verifyResult{}, fmt.Errorf("verify-log: %w", err)
		}
		res.OldSize = oc.Size
	}
	return res, nil
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

func readSmall(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("verify-log: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, verifyLogMax+1))
	if err != nil {
		return nil, fmt.Errorf("verify-log: %s: %w", name, err)
	}
	if len(b) > verifyLogMax {
		return nil, fmt.Errorf("verify-log: %s is larger than %d bytes", name, verifyLogMax)
	}
	return b, nil
}

// fetchSource gets the latest checkpoint and the asked proofs from a
// server. The key comes from the server only when none is given, with a
// warning: a key fetched from the log it checks proves nothing against
// that log's operator.
func fetchSource(ctx context.Context, e env, base string, wantKey bool, index, oldSize int64) (verifySource, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return verifySource{}, fmt.Errorf("verify-log: --server %q: want an http(s) URL", base)
	}
	base = strings.TrimRight(base, "/")
	hc := &http.Client{Timeout: 30 * time.Second}
	fetch := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, fmt.Errorf("verify-log: %w", err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("verify-log: %w", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, verifyLogMax+1))
		if err != nil || len(b) > verifyLogMax {
			return nil, fmt.Errorf("verify-log: GET %s: unreadable or too large", path)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("verify-log: GET %s: HTTP %d", path, resp.StatusCode) // never the server's own status text
		}
		return b, nil
	}
	var s verifySource
	if s.checkpoint, err = fetch("/evidence/checkpoint"); err != nil {
		return s, err
	}
	if wantKey {
		k, err := fetch("/evidence/key")
		if err != nil {
			return s, err
		}
		s.key = strings.TrimSpace(string(k))
		fmt.Fprintln(e.stderr, "wsca verify-log: warning: the key comes from the server itself; give --key from a trusted source")
	}
	// The proofs are for the size the checkpoint says (read unverified
	// here; verify checks the signature before anything else).
	size := checkpointSize(s.checkpoint)
	if index >= 0 {
		if s.inclusion, err = fetch(fmt.Sprintf("/evidence/proof/inclusion?index=%d&size=%d", index, size)); err != nil {
			return s, err
		}
	}
	if oldSize >= 0 {
		if s.consistency, err = fetch(fmt.Sprintf("/evidence/proof/consistency?old=%d&new=%d", oldSize, size)); err != nil {
			return s, err
		}
	}
	return s, nil
}

func checkpointSize(signed []byte) int64 {
	lines := strings.SplitN(string(signed), "\n", 3)
	if len(lines) < 2 {
		return 0
	}
	n, _ := logverify.ParseIndex(lines[1])
	return n
}
