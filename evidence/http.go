package evidence

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wsca/wsca/evidence/logverify"
	"github.com/wsca/wsca/store"
)

// Paths served by Handler (docs/evidence.md); PathEntries by
// EntryHandler, on the admin listener.
const (
	PathCheckpoint  = "/evidence/checkpoint"
	PathKey         = "/evidence/key"
	PathInclusion   = "/evidence/proof/inclusion"
	PathConsistency = "/evidence/proof/consistency"
	PathEntries     = "/admin/v1/evidence/entries/"
)

// Handler serves the log on the public listener: GET of the latest signed
// checkpoint (text), the verifier key (text) and inclusion and consistency
// proofs (JSON, base64 hashes), none of which says anything of a unit.
// Every request reads at most one checkpoint and O(log n) hashes; sizes
// beyond the stored tree are refused. Errors are generic; causes go to the
// log.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathCheckpoint, l.serveCheckpoint)
	mux.HandleFunc("GET "+PathKey, l.serveKey)
	mux.HandleFunc("GET "+PathInclusion, l.serveInclusion)
	mux.HandleFunc("GET "+PathConsistency, l.serveConsistency)
	return mux
}

// EntryHandler serves a leaf by index (bytes) at PathEntries{index}. A
// leaf names a unit and what it did, so it is for the operator's admin
// listener, never the public one: the parties to a record hold its leaf,
// and anyone checks its inclusion with the public proofs.
func (l *Log) EntryHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathEntries+"{index}", l.serveEntry)
	return mux
}

type httpError struct {
	status int
	msg    string
}

var (
	errBadRequest  = httpError{http.StatusBadRequest, "bad request"}
	errNotFound    = httpError{http.StatusNotFound, "not found"}
	errUnavailable = httpError{http.StatusServiceUnavailable, "evidence log unavailable"}
)

func (l *Log) fail(w http.ResponseWriter, r *http.Request, e httpError, cause error) {
	if e.status >= 500 {
		l.log.ErrorContext(r.Context(), "evidence: request failed", "path", r.URL.Path, "err", cause)
	} else if cause != nil {
		l.log.DebugContext(r.Context(), "evidence: request refused", "path", r.URL.Path, "err", cause)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.msg})
}

func (l *Log) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) != 0 {
		l.fail(w, r, errBadRequest, errors.New("query on the checkpoint"))
		return
	}
	c, err := l.cfg.Store.LatestEvidenceCheckpoint(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		l.fail(w, r, errNotFound, nil)
		return
	}
	if err != nil {
		l.fail(w, r, errUnavailable, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(c.Note)
}

func (l *Log) serveKey(w http.ResponseWriter, r *http.Request) {
	k, err := l.VerifierKey(r.Context())
	if errors.Is(err, ErrNoCheckpoint) {
		l.fail(w, r, errNotFound, nil)
		return
	}
	if err != nil {
		l.fail(w, r, errUnavailable, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(k + "\n"))
}

func (l *Log) serveEntry(w http.ResponseWriter, r *http.Request) {
	i, err := logverify.ParseIndex(r.PathValue("index"))
	if err != nil || len(r.URL.RawQuery) != 0 {
		l.fail(w, r, errBadRequest, err)
		return
	}
	leaf, err := l.cfg.Store.GetEvidenceLeaf(r.Context(), i)
	if errors.Is(err, store.ErrNotFound) {
		l.fail(w, r, errNotFound, nil)
		return
	}
	if err != nil {
		l.fail(w, r, errUnavailable, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// private: the response to a request with the admin token names a
	// unit; a shared cache must not keep it for others (RFC 9111 §3.5).
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
	w.Write(leaf)
}

// queryInts reads exactly the named parameters, each once, as indices.
func queryInts(q string, names ...string) ([]int64, error) {
	v, err := url.ParseQuery(q)
	if err != nil {
		return nil, err
	}
	if len(v) != len(names) {
		return nil, errors.New("unexpected parameters")
	}
	out := make([]int64, len(names))
	for i, n := range names {
		if len(v[n]) != 1 {
			return nil, errors.New("parameter " + n + " missing or repeated")
		}
		if out[i], err = logverify.ParseIndex(v[n][0]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// treeSize is the size of the stored tree, which bounds the proofs.
func (l *Log) treeSize(w http.ResponseWriter, r *http.Request) (int64, bool) {
	t, err := l.cfg.Store.GetEvidenceTree(r.Context())
	if err != nil {
		l.fail(w, r, errUnavailable, err)
		return 0, false
	}
	return t.Size, true
}

func (l *Log) serveInclusion(w http.ResponseWriter, r *http.Request) {
	v, err := queryInts(r.URL.RawQuery, "index", "size")
	if err != nil {
		l.fail(w, r, errBadRequest, err)
		return
	}
	index, size := v[0], v[1]
	n, ok := l.treeSize(w, r)
	if !ok {
		return
	}
	if index >= size || size > n {
		l.fail(w, r, errBadRequest, errors.New("index or size outside the tree"))
		return
	}
	p, err := tlog.ProveRecord(size, index, l.cfg.Store.EvidenceHashes(r.Context()))
	if err != nil {
		l.fail(w, r, errUnavailable, err)
		return
	}
	writeJSON(w, logverify.InclusionProof{Index: index, Size: size, Hashes: raw(p)})
}

func (l *Log) serveConsistency(w http.ResponseWriter, r *http.Request) {
	v, err := queryInts(r.URL.RawQuery, "old", "new")
	if err != nil {
		l.fail(w, r, errBadRequest, err)
		return
	}
	old, size := v[0], v[1]
	n, ok := l.treeSize(w, r)
	if !ok {
		return
	}
	if old > size || size > n || size == 0 {
		l.fail(w, r, errBadRequest, errors.New("sizes outside the tree"))
		return
	}
	out := logverify.ConsistencyProof{Old: old, New: size, Hashes: [][]byte{}}
	if old > 0 {
		p, err := tlog.ProveTree(size, old, l.cfg.Store.EvidenceHashes(r.Context()))
		if err != nil {
			l.fail(w, r, errUnavailable, err)
			return
		}
		out.Hashes = raw(p)
	}
	writeJSON(w, out)
}

func raw(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(v) // a client gone is nothing to report
}
