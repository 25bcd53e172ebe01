package server_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/internal/hostile"
	"github.com/wsca/wsca/internal/stack"
	"github.com/wsca/wsca/internal/stack/stacktest"
	"github.com/wsca/wsca/internal/testdevice"
	"github.com/wsca/wsca/internal/testenv"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/server"
)

// metric returns the value of a counter or gauge in reg (0 when absent).
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// hold starts a /r2ps request whose body is announced but not sent, so
// its handler holds a slot while it waits for the body; finish sends the
// rest and returns the status line of the answer.
func hold(t *testing.T, url string) (finish func() string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := "...."
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/jose\r\nContent-Length: %d\r\n\r\n%s", r2ps.Path, len(body), body[:1])
	return func() string {
		io.WriteString(conn, body[1:])
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(line)
	}
}

// TestR2PSConcurrencyLimit: with the limit reached, a request waits
// (server.R2PSQueueWait) and is answered 503 TRY_LATER with Retry-After,
// without its body being read (it never ends); the held request is then
// answered on its merits, and its slot serves the next.
func TestR2PSConcurrencyLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), func(o *stack.Options) {
		o.R2PSMaxConcurrent, o.Registry = 1, reg
	})
	client := &http.Client{Timeout: 20 * time.Second} // a safety net: without the limit the next call would hang
	finish := hold(t, r.URL)
	for i := 0; metric(t, reg, "wsca_r2ps_in_flight") != 1; i++ {
		if i > 1000 {
			t.Fatal("the held request never took its slot")
		}
		time.Sleep(5 * time.Millisecond)
	}

	endless, w := io.Pipe()
	defer w.Close()
	resp, err := client.Post(r.URL+r2ps.Path, "application/jose", endless)
	if err != nil {
		t.Fatal(err)
	}
	var problem struct {
		Type, Code string
		Status     int
	}
	err = json.NewDecoder(resp.Body).Decode(&problem)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		resp.Header.Get("Content-Type") != "application/problem+json" ||
		problem.Code != r2ps.CodeTryLater || problem.Status != 503 || problem.Type != "urn:wsca:r2ps:TRY_LATER" {
		t.Fatalf("over the limit: %s %v %+v %v", resp.Status, resp.Header, problem, err)
	}
	if n := metric(t, reg, "wsca_r2ps_busy_total"); n != 1 {
		t.Fatalf("wsca_r2ps_busy_total = %v", n)
	}

	if line := finish(); !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("held request: %q", line)
	}
	resp, err = client.Post(r.URL+r2ps.Path, "application/jose", strings.NewReader("...."))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("after the slot was freed: %s", resp.Status)
	}
}

// TestR2PSBodyLimit: a body over MaxBodyBytes is 413, whether its length
// is declared (refused unread) or not (refused at the limit).
func TestR2PSBodyLimit(t *testing.T) {
	r := stacktest.Start(t, testenv.SQLite(t), testdevice.Soft(t), nil)
	client := &http.Client{Timeout: 20 * time.Second}
	for name, body := range map[string]func() (io.Reader, int64){
		"declared": func() (io.Reader, int64) {
			endless, w := io.Pipe()
			t.Cleanup(func() { w.Close() })
			return endless, server.MaxBodyBytes + 1
		},
		"chunked": func() (io.Reader, int64) {
			return io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{'A'}, server.MaxBodyBytes+1))), -1
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, n := body()
			req, err := http.NewRequest(http.MethodPost, r.URL+r2ps.Path, b)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = n
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("%s", resp.Status)
			}
		})
	}
}

// BenchmarkHostileHandler measures the CPU time and allocations of one
// hostile body (internal/hostile) through the whole /r2ps handler of a real
// stack (software device, SQLite): body read, dispatcher, refusal.
func BenchmarkHostileHandler(b *testing.B) {
	r := stacktest.Start(b, testenv.SQLite(b), testdevice.Soft(b), nil)
	agree := r.R2PS.Keys().Keys[0]
	pub, err := agree.Key.(*ecdsa.PublicKey).ECDH()
	if err != nil {
		b.Fatal(err)
	}
	signed, err := hostile.SelfSigned(pub, agree.KeyID)
	if err != nil {
		b.Fatal(err)
	}
	h := r.Server.Handler()
	for _, body := range append(hostile.Structural(), signed...) {
		b.Run(body.Name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.Body)))
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, r2ps.Path, bytes.NewReader(body.Body)))
				if rec.Code/100 != 4 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
