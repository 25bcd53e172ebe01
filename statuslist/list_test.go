package statuslist_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/wsca/wsca/statuslist"
)

// vector is one encoding vector of the draft and the statuses it holds.
type vector struct {
	file     string
	bits, n  int
	statuses [][2]int // index, value, in the order they are set
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "draft", "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if fields[0] == "vector" {
			bits, _ := strconv.Atoi(fields[2])
			n, _ := strconv.Atoi(fields[3])
			vs = append(vs, vector{file: fields[1], bits: bits, n: n})
			continue
		}
		i, err1 := strconv.Atoi(fields[0])
		v, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil || len(vs) == 0 {
			t.Fatalf("expected.txt: bad line %q", line)
		}
		vs[len(vs)-1].statuses = append(vs[len(vs)-1].statuses, [2]int{i, v})
	}
	if len(vs) != 8 {
		t.Fatalf("expected.txt: %d vectors", len(vs))
	}
	return vs
}

// readVector returns bits and the compressed list of a vector file: JSON
// {"bits","lst"} (lst wrapped over lines), or CBOR in hex.
func readVector(t *testing.T, file string) (int, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "draft", file))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.HasSuffix(file, "_cbor.md") {
		raw, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			t.Fatal(err)
		}
		var sl struct {
			Bits int    `cbor:"bits"`
			Lst  []byte `cbor:"lst"`
		}
		if err := cbor.Unmarshal(raw, &sl); err != nil {
			t.Fatal(err)
		}
		return sl.Bits, sl.Lst
	}
	if i := strings.Index(s, "{"); i >= 0 {
		s = s[i:]
	}
	// The lst string is wrapped: joining the lines inside it restores it.
	s = strings.Join(strings.Fields(s), "")
	var sl struct {
		Bits int    `json:"bits"`
		Lst  string `json:"lst"`
	}
	if err := json.Unmarshal([]byte(s), &sl); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	lst, err := base64.RawURLEncoding.DecodeString(sl.Lst)
	if err != nil {
		t.Fatal(err)
	}
	return sl.Bits, lst
}

func want(v vector) map[int]statuslist.Status {
	m := make(map[int]statuslist.Status)
	for _, s := range v.statuses {
		m[s[0]] = statuslist.Status(s[1])
	}
	return m
}

// checkList compares every entry of l with v.
func checkList(t *testing.T, l *statuslist.List, v vector) {
	t.Helper()
	if l.Bits() != v.bits || l.Len() != v.n {
		t.Fatalf("bits %d len %d, want %d and %d", l.Bits(), l.Len(), v.bits, v.n)
	}
	w := want(v)
	for i := range l.Len() {
		got, err := l.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if got != w[i] {
			t.Fatalf("status[%d] = %d, want %d", i, got, w[i])
		}
	}
}

// TestVectors decodes every encoding vector of the draft to the statuses
// the draft lists, builds the same list, and checks that our encoding
// decodes to it again.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.file, func(t *testing.T) {
			bits, lst := readVector(t, v.file)
			if bits != v.bits {
				t.Fatalf("bits %d, want %d", bits, v.bits)
			}
			l, err := statuslist.Decode(bits, lst, v.n)
			if err != nil {
				t.Fatal(err)
			}
			checkList(t, l, v)

			built, err := statuslist.New(v.bits, v.n)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range v.statuses {
				if err := built.Set(s[0], statuslist.Status(s[1])); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(built.Bytes(), l.Bytes()) {
				t.Fatal("built list differs from the vector's")
			}
			enc, err := built.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if enc[0] != 0x78 || enc[1] != 0xda {
				t.Errorf("header %x, want 78da (zlib, best compression)", enc[:2])
			}
			again, err := statuslist.Decode(v.bits, enc, v.n)
			if err != nil {
				t.Fatal(err)
			}
			checkList(t, again, v)
		})
	}
}

// TestPacking pins the bit order of the draft's two worked examples: LSB
// first within a byte.
func TestPacking(t *testing.T) {
	cases := []struct {
		bits     int
		statuses []statuslist.Status
		want     []byte
	}{
		{1, []statuslist.Status{1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1}, []byte{0xb9, 0xa3}},
		{2, []statuslist.Status{1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3}, []byte{0xc9, 0x44, 0xf9}},
		{4, []statuslist.Status{0xa, 0x5}, []byte{0x5a}},
		{8, []statuslist.Status{0xfe, 0x01}, []byte{0xfe, 0x01}},
	}
	for _, c := range cases {
		l, err := statuslist.New(c.bits, len(c.statuses))
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range c.statuses {
			if err := l.Set(i, s); err != nil {
				t.Fatal(err)
			}
		}
		if got := l.Bytes(); !bytes.Equal(got, c.want) {
			t.Errorf("bits %d: %x, want %x", c.bits, got, c.want)
		}
		// Overwriting an entry leaves its neighbours alone.
		if err := l.Set(0, 0); err != nil {
			t.Fatal(err)
		}
		for i, s := range c.statuses[1:] {
			if got, _ := l.Get(i + 1); got != s {
				t.Errorf("bits %d: entry %d became %d after clearing entry 0", c.bits, i+1, got)
			}
		}
	}
}

func TestListErrors(t *testing.T) {
	l, err := statuslist.New(2, 10)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"bits 3", func() error { _, err := statuslist.New(3, 8); return err }(), statuslist.ErrBits},
		{"empty", func() error { _, err := statuslist.New(2, 0); return err }(), statuslist.ErrIndex},
		{"get -1", func() error { _, err := l.Get(-1); return err }(), statuslist.ErrIndex},
		{"get len", func() error { _, err := l.Get(10); return err }(), statuslist.ErrIndex},
		{"set len", l.Set(10, 1), statuslist.ErrIndex},
		{"set 4 in 2 bits", l.Set(0, 4), statuslist.ErrValue},
		{"decode bits 0", func() error { _, err := statuslist.Decode(0, nil, 8); return err }(), statuslist.ErrBits},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
}

func zlibOf(t *testing.T, b []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestDecodeRefuses(t *testing.T) {
	good := zlibOf(t, make([]byte, 100), zlib.BestCompression)
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 1
	var raw bytes.Buffer
	fw, _ := flate.NewWriter(&raw, flate.BestCompression)
	fw.Write(make([]byte, 100))
	fw.Close()
	// 64 MiB of zeros compress to about 64 KiB.
	bomb := zlibOf(t, make([]byte, 64<<20), zlib.BestCompression)

	cases := []struct {
		name       string
		lst        []byte
		maxEntries int
		want       error
	}{
		{"bad checksum", badSum, 400, statuslist.ErrEncoding},
		{"trailing data", append(bytes.Clone(good), 0), 400, statuslist.ErrEncoding},
		{"raw deflate", raw.Bytes(), 400, statuslist.ErrEncoding},
		{"truncated", good[:len(good)-3], 400, statuslist.ErrEncoding},
		{"empty stream", zlibOf(t, nil, 9), 400, statuslist.ErrEncoding},
		{"one byte over", good, 396, statuslist.ErrTooLarge},
		{"zip bomb", bomb, 1 << 20, statuslist.ErrTooLarge},
		{"no limit", good, 0, statuslist.ErrTooLarge},
	}
	for _, c := range cases {
		_, err := statuslist.Decode(2, c.lst, c.maxEntries)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if l, err := statuslist.Decode(2, good, 400); err != nil || l.Len() != 400 {
		t.Fatalf("exact limit: %v", err)
	}
}
