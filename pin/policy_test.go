package pin

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseDelays(t *testing.T) {
	good := []struct {
		in   string
		want []Delay
	}{
		{"", nil},
		{"3:1m", []Delay{{3, time.Minute}}},
		{"3:1m,4:5m", []Delay{{3, time.Minute}, {4, 5 * time.Minute}}},
		{"1:30s,2:30s,10:1h30m", []Delay{{1, 30 * time.Second}, {2, 30 * time.Second}, {10, 90 * time.Minute}}},
		{"1:1.5s", []Delay{{1, 1500 * time.Millisecond}}},
	}
	for _, c := range good {
		got, err := ParseDelays(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseDelays(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		// Round trip through the printed form.
		again, err := ParseDelays(FormatDelays(got))
		if err != nil || !slices.Equal(again, got) {
			t.Errorf("round trip of %q via %q: %v, %v", c.in, FormatDelays(got), again, err)
		}
	}
	bad := []string{
		",", "3:1m,", ",3:1m", "3", "3:", ":1m", "3:1m:2m", "0:1m", "03:1m", "+3:1m", "-3:1m", "3:+1m", "3:-1m",
		"3:0s", "3:0", "3:1", "3:1x", " 3:1m", "3:1m ", "3: 1m", "3:1m, 4:5m", "3:1m,3:2m", "4:1m,3:2m",
		"3:5m,4:1m", "99999:1m", "1001:1m", "1:9999999999h", "٣:1m", "3:1m\n",
	}
	for _, in := range bad {
		if got, err := ParseDelays(in); !errors.Is(err, ErrPolicy) {
			t.Errorf("ParseDelays(%q) = %v, %v; want ErrPolicy", in, got, err)
		}
	}
}

func TestPolicyWait(t *testing.T) {
	p, err := Policy{MaxAttempts: 10, Delays: []Delay{{3, time.Minute}, {5, time.Hour}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for failures, want := range []time.Duration{0, 0, 0, time.Minute, time.Minute, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour} {
		if got := p.wait(failures); got != want {
			t.Errorf("wait(%d) = %v, want %v", failures, got, want)
		}
	}
	if p, err := (Policy{}).withDefaults(); err != nil || p.MaxAttempts != DefaultMaxAttempts || p.wait(4) != 0 {
		t.Fatalf("zero policy: %+v, %v", p, err)
	}
	for _, bad := range []Policy{
		{MaxAttempts: -1},
		{MaxAttempts: 1001},
		{MaxAttempts: 3, Delays: []Delay{{3, time.Minute}}},
		{Delays: []Delay{{0, time.Minute}}},
		{Delays: []Delay{{1, -time.Minute}}},
		{Delays: []Delay{{2, time.Minute}, {1, time.Hour}}},
		{Delays: []Delay{{1, time.Hour}, {2, time.Minute}}},
	} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrPolicy) {
			t.Errorf("%+v: %v, want ErrPolicy", bad, err)
		}
	}
	// The policy keeps its own copy of the delays.
	ds := []Delay{{1, time.Minute}}
	p, _ = Policy{Delays: ds}.withDefaults()
	ds[0].Wait = 0
	if p.wait(1) != time.Minute {
		t.Fatal("policy shares the caller's delays")
	}
}

func TestKeyMaterialEncoding(t *testing.T) {
	conf, err := Profile{}.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, 64)
	skm, err := generateKeyMaterial(conf, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	enc := encodeKeyMaterial(skm)
	if len(enc) != keyMaterialLen || enc[0] != keyMaterialVersion || !bytes.Equal(enc[1:], seed) {
		t.Fatalf("encoding %x", enc)
	}
	dec, err := decodeKeyMaterial(conf, enc)
	if err != nil || !dec.PrivateKey.Equal(skm.PrivateKey) || !bytes.Equal(dec.PublicKeyBytes, skm.PublicKeyBytes) ||
		!bytes.Equal(dec.OPRFGlobalSeed, skm.OPRFGlobalSeed) || dec.Identity != nil {
		t.Fatalf("round trip: %v", err)
	}
	order := "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551" // P-256 n
	for name, enc := range map[string][]byte{
		"empty":       nil,
		"short":       enc[:64],
		"long":        append(bytes.Clone(enc), 0),
		"version":     append([]byte{2}, enc[1:]...),
		"zero key":    slices.Concat([]byte{1}, make([]byte, 32), seed[:32]),
		"key = order": slices.Concat([]byte{1}, mustHex(t, order), seed[:32]),
	} {
		if _, err := decodeKeyMaterial(conf, enc); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// Rejection sampling skips values that are no scalars.
	skm2, err := generateKeyMaterial(conf, bytes.NewReader(slices.Concat(mustHex(t, order), make([]byte, 32), seed)))
	if err != nil || !bytes.Equal(encodeKeyMaterial(skm2), enc) {
		t.Fatalf("rejection sampling: %x, %v", encodeKeyMaterial(skm2), err)
	}
	if _, err := generateKeyMaterial(conf, bytes.NewReader(make([]byte, 32*maxScalarDraws+32))); err == nil {
		t.Fatal("all-zero source yields key material")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
