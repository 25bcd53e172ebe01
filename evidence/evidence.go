// Package evidence is the server side of wsca's evidence log
// (docs/evidence.md): one append-only Merkle log in the store of every
// security-relevant event of the server, with checkpoints signed by a
// server key on the device.
//
// Recording an event is one insert (store.AppendEvent); the sequencer
// (Run, on every instance with a device, one at a time across instances)
// gives pending events their leaf indices in batches, and signs a
// checkpoint at most every Interval when the tree grew. Handler serves the
// checkpoint, the leaves and the proofs; evidence/logverify checks them.
package evidence

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/evidence/event"
	"github.com/wsca/wsca/evidence/logverify"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// PurposeCheckpoint is the server-key purpose of the checkpoint key.
const PurposeCheckpoint = "evidence-checkpoint"

// Defaults of Config.
const (
	DefaultInterval = time.Second
	DefaultBatch    = 1000
)

// Errors of the log.
var (
	// ErrIntegrity: the stored log does not extend the last checkpoint
	// (a hash, leaf or the tree record was rewritten or removed). No
	// checkpoint is signed over it.
	ErrIntegrity = errors.New("evidence: the stored log fails its integrity check")
	// ErrNoCheckpoint: none signed yet.
	ErrNoCheckpoint = errors.New("evidence: no checkpoint yet")
	// ErrNotSigner: this instance does not sequence or sign (no device key).
	ErrNotSigner = errors.New("evidence: this instance does not sign checkpoints")
)

// Store is what the log needs of the store.
type Store interface {
	AppendEvent(ctx context.Context, leaf []byte, at time.Time) error
	SequenceEvidence(ctx context.Context, max int) (store.EvidenceTree, int, error)
	EvidenceHashes(ctx context.Context) tlog.HashReader
	GetEvidenceTree(ctx context.Context) (store.EvidenceTree, error)
	GetEvidenceLeaf(ctx context.Context, index int64) ([]byte, error)
	PutEvidenceCheckpoint(ctx context.Context, c store.EvidenceCheckpoint) error
	LatestEvidenceCheckpoint(ctx context.Context) (store.EvidenceCheckpoint, error)
	GetServerKey(ctx context.Context, purpose string) (store.ServerKey, error)
}

// Config configures a Log.
type Config struct {
	Store Store
	// Keys signs checkpoints with the PurposeCheckpoint server key; nil
	// (a WSCA-only instance, whose device is not the WSCD's): the log
	// records events and serves what is stored, and neither sequences nor
	// signs (ErrNotSigner).
	Keys *wscd.ServerKeys
	// Origin names the log: the checkpoints' first line and the key name.
	Origin string
	// Interval is the most often a checkpoint is signed (and how often
	// Run sequences); Batch the most events one transaction sequences.
	Interval time.Duration
	Batch    int
	Now      func() time.Time
	Logger   *slog.Logger
	// Registerer, if set, receives the log's metrics.
	Registerer prometheus.Registerer
}

// Log is the evidence log of one instance. It is safe for concurrent use.
type Log struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	verifier *logverify.Verifier // the checkpoint key, once known
	key      wscd.ServerKey      // on a signer

	// seqMu: one sequencing round at a time in this process (the store
	// serialises instances).
	seqMu sync.Mutex

	appended, failed prometheus.Counter
	sequenced        prometheus.Counter
	size             prometheus.Gauge
	errs             *prometheus.CounterVec
}

// New returns the log. On a signer it loads (or makes, once, for every
// instance) the checkpoint key.
func New(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, errors.New("evidence: store is required")
	}
	if !validOrigin(cfg.Origin) {
		return nil, fmt.Errorf("evidence: origin %q: a non-empty name without spaces or '+'", cfg.Origin)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{cfg: cfg, log: cfg.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.appended = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsca_evidence_events_total", Help: "Evidence events appended by this instance."})
	l.failed = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsca_evidence_append_errors_total", Help: "Evidence events this instance failed to append (logged)."})
	l.sequenced = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsca_evidence_sequenced_total", Help: "Evidence events this instance sequenced."})
	l.size = prometheus.NewGauge(prometheus.GaugeOpts{Name: "wsca_evidence_tree_size", Help: "Size of the evidence tree this instance last sequenced or signed."})
	l.errs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsca_evidence_errors_total", Help: "Sequencing and checkpoint failures, by stage."}, []string{"stage"})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.appended, l.failed, l.sequenced, l.size, l.errs} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("evidence: %w", err)
			}
		}
	}
	if cfg.Keys != nil {
		k, err := cfg.Keys.Key(ctx, PurposeCheckpoint)
		if err != nil {
			return nil, fmt.Errorf("evidence: checkpoint key: %w", err)
		}
		v, err := verifierFor(cfg.Origin, k.Public)
		if err != nil {
			return nil, err
		}
		l.key, l.verifier = k, v
	}
	return l, nil
}

func validOrigin(o string) bool {
	_, err := logverify.ParseCheckpoint(logverify.Checkpoint{Origin: o, Size: 1}.Text())
	return err == nil
}

func verifierFor(origin string, pub *ecdsa.PublicKey) (*logverify.Verifier, error) {
	vkey, err := logverify.VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("evidence: checkpoint key: %w", err)
	}
	v, err := logverify.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("evidence: checkpoint key: %w", err)
	}
	return v, nil
}

// Origin is the log's name.
func (l *Log) Origin() string { return l.cfg.Origin }

// Verifier returns the checkpoint key's verifier. On an instance that
// does not sign, it reads the key's record from the store (the WSCD's,
// which may not exist yet: ErrNoCheckpoint).
func (l *Log) Verifier(ctx context.Context) (*logverify.Verifier, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.verifier != nil {
		return l.verifier, nil
	}
	rec, err := l.cfg.Store.GetServerKey(ctx, PurposeCheckpoint)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("evidence: checkpoint key: %w", err)
	}
	pub, err := device.PublicKeyFromBytes(rec.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint key record: %v", ErrIntegrity, err)
	}
	v, err := verifierFor(l.cfg.Origin, pub)
	if err != nil {
		return nil, err
	}
	l.verifier = v
	return v, nil
}

// VerifierKey is the verifier key (logverify.NewVerifier's input) that
// wallets, relying parties and judges configure.
func (l *Log) VerifierKey(ctx context.Context) (string, error) {
	v, err := l.Verifier(ctx)
	if err != nil {
		return "", err
	}
	return logverify.VerifierKey(v.Name(), v.Public())
}

// Record appends an event. It never fails the caller's operation, which
// has happened: a failure is logged (without the event's detail) and
// counted (wsca_evidence_append_errors_total). Time zero is now.
func (l *Log) Record(ctx context.Context, e event.Event) {
	if err := l.Append(ctx, e); err != nil {
		l.failed.Inc()
		l.log.ErrorContext(ctx, "evidence: event not appended", "type", e.Type.String(), "unit", e.Unit, "err", err)
	}
}

// Append appends an event and returns the store's error, for callers
// that must not go on without it (a SECDSA transaction record).
func (l *Log) Append(ctx context.Context, e event.Event) error {
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	leaf, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if err := l.cfg.Store.AppendEvent(ctx, leaf, e.Time); err != nil {
		return fmt.Errorf("evidence: append: %w", err)
	}
	l.appended.Inc()
	return nil
}

// AppendSECDSARecord appends a SECDSA transaction record's event: the
// unit and the record's hash (or bytes, at most event.MaxDataSize).
func (l *Log) AppendSECDSARecord(ctx context.Context, unit string, record []byte) error {
	return l.Append(ctx, event.Event{Type: event.SECDSARecord, Unit: unit, Data: record})
}

// Run sequences and signs every Interval until ctx ends. Failures are
// logged and counted; the next round tries again.
func (l *Log) Run(ctx context.Context) error {
	if l.cfg.Keys == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := l.round(ctx, false); err != nil && !errors.Is(err, ErrNoCheckpoint) && ctx.Err() == nil {
			l.log.ErrorContext(ctx, "evidence: sequencing round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync sequences every event appended before it was called and returns a
// checkpoint covering them, signing one now if none does: the way for
// tests and tools to wait until events are in the log.
func (l *Log) Sync(ctx context.Context) (store.EvidenceCheckpoint, error) {
	if l.cfg.Keys == nil {
		return store.EvidenceCheckpoint{}, ErrNotSigner
	}
	return l.round(ctx, true)
}

// round sequences all pending events, then signs a checkpoint when the
// tree grew past the last one and (unless now) Interval has passed since.
func (l *Log) round(ctx context.Context, now bool) (store.EvidenceCheckpoint, error) {
	l.seqMu.Lock()
	defer l.seqMu.Unlock()
	var tree store.EvidenceTree
	for {
		t, n, err := l.cfg.Store.SequenceEvidence(ctx, l.cfg.Batch)
		if err != nil {
			l.errs.WithLabelValues("sequence").Inc()
			if errors.Is(err, store.ErrEvidenceIntegrity) {
				return store.EvidenceCheckpoint{}, fmt.Errorf("%w: %v", ErrIntegrity, err)
			}
			return store.EvidenceCheckpoint{}, fmt.Errorf("evidence: sequence: %w", err)
		}
		tree = t
		l.sequenced.Add(float64(n))
		if n < l.cfg.Batch {
			break
		}
	}
	l.size.Set(float64(tree.Size))
	last, err := l.cfg.Store.LatestEvidenceCheckpoint(ctx)
	hasLast := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.EvidenceCheckpoint{}, fmt.Errorf("evidence: %w", err)
	}
	if tree.Size == 0 {
		return store.EvidenceCheckpoint{}, ErrNoCheckpoint
	}
	if hasLast && last.Size == tree.Size {
		if err := l.checkExtends(ctx, last, tree); err != nil {
			return store.EvidenceCheckpoint{}, err
		}
		return last, nil
	}
	if hasLast && !now && l.cfg.Now().Sub(last.CreatedAt) < l.cfg.Interval {
		return last, nil
	}
	return l.sign(ctx, tree, last, hasLast)
}

// checkExtends verifies that the stored tree (its root recomputed from the
// stored hashes) extends the last signed checkpoint.
func (l *Log) checkExtends(ctx context.Context, last store.EvidenceCheckpoint, tree store.EvidenceTree) error {
	fail := func(format string, a ...any) error {
		l.errs.WithLabelValues("integrity").Inc()
		err := fmt.Errorf("%w: %s", ErrIntegrity, fmt.Sprintf(format, a...))
		l.log.ErrorContext(ctx, "evidence: the stored log does not extend the last checkpoint: it was changed outside wsca", "err", err)
		return err
	}
	hashes := l.cfg.Store.EvidenceHashes(ctx)
	root, err := tlog.TreeHash(tree.Size, hashes)
	if err != nil {
		return fail("tree of %d: %v", tree.Size, err)
	}
	if root != tree.Root {
		return fail("the tree's root is not its hashes' root")
	}
	v, err := l.Verifier(ctx)
	if err != nil {
		return err
	}
	old, err := logverify.OpenCheckpoint(last.Note, v)
	if err != nil {
		return fail("stored checkpoint %d: %v", last.Size, err)
	}
	if old.Size > tree.Size {
		return fail("tree of %d is smaller than checkpoint %d", tree.Size, old.Size)
	}
	if old.Size == tree.Size {
		if old.Root != root {
			return fail("root of %d differs from its checkpoint", tree.Size)
		}
		return nil
	}
	proof, err := tlog.ProveTree(tree.Size, old.Size, hashes)
	if err != nil {
		return fail("consistency %d→%d: %v", old.Size, tree.Size, err)
	}
	if err := tlog.CheckTree(proof, tree.Size, root, old.Size, old.Root); err != nil {
		return fail("consistency %d→%d: %v", old.Size, tree.Size, err)
	}
	return nil
}

// sign signs a checkpoint of tree after checking that it extends the last
// one, and keeps it (or the one another instance kept for that size).
func (l *Log) sign(ctx context.Context, tree store.EvidenceTree, last store.EvidenceCheckpoint, hasLast bool) (store.EvidenceCheckpoint, error) {
	if hasLast {
		if err := l.checkExtends(ctx, last, tree); err != nil {
			return store.EvidenceCheckpoint{}, err
		}
	} else if root, err := tlog.TreeHash(tree.Size, l.cfg.Store.EvidenceHashes(ctx)); err != nil || root != tree.Root {
		l.errs.WithLabelValues("integrity").Inc()
		return store.EvidenceCheckpoint{}, fmt.Errorf("%w: the tree's root is not its hashes' root", ErrIntegrity)
	}
	text := logverify.Checkpoint{Origin: l.cfg.Origin, Size: tree.Size, Root: tree.Root}.Text()
	msg, err := note.Sign(&note.Note{Text: string(text)}, &signer{ctx: ctx, l: l})
	if err != nil {
		l.errs.WithLabelValues("sign").Inc()
		return store.EvidenceCheckpoint{}, fmt.Errorf("evidence: sign checkpoint: %w", err)
	}
	c := store.EvidenceCheckpoint{Size: tree.Size, Note: msg, CreatedAt: l.cfg.Now().UTC()}
	err = l.cfg.Store.PutEvidenceCheckpoint(ctx, c)
	if errors.Is(err, store.ErrExists) {
		return l.cfg.Store.LatestEvidenceCheckpoint(ctx)
	}
	if err != nil {
		return store.EvidenceCheckpoint{}, fmt.Errorf("evidence: %w", err)
	}
	l.log.DebugContext(ctx, "evidence: checkpoint signed", "size", tree.Size)
	return c, nil
}

// signer is a note.Signer of type 0x02 over the checkpoint server key: an
// ECDSA P-256 signature (ASN.1 DER) of SHA-256 of the note text, made on
// the device. It carries the request's context (note.Signer has none).
type signer struct {
	ctx context.Context
	l   *Log
}

func (s *signer) Name() string    { return s.l.verifier.Name() }
func (s *signer) KeyHash() uint32 { return s.l.verifier.KeyHash() }

func (s *signer) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	raw, err := s.l.cfg.Keys.Sign(s.ctx, s.l.key, d[:])
	if err != nil {
		return nil, err
	}
	return device.RawToDER(raw)
}
