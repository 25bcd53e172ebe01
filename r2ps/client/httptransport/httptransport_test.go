package httptransport_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

// server echoes the method, content type and body, and answers /big with
// 11 bytes (with a Content-Length, or chunked under /big/chunked), /hang
// only when the request ends.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte("01234567890"))
		case "/big/chunked":
			_, _ = w.Write([]byte("0123456789"))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("0"))
		case "/hang":
			<-r.Context().Done()
		default:
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/x")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(r.Method + " " + r.Header.Get("Content-Type") + " " + string(b)))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestDo(t *testing.T) {
	s := server(t)
	tr := httptransport.New(nil)
	for _, tc := range []struct {
		name string
		req  client.HTTPRequest
		want client.HTTPResponse
	}{
		{"post", client.HTTPRequest{Method: "POST", URL: s.URL + "/x", ContentType: "application/x", Body: []byte("hello"), MaxResponse: 100},
			client.HTTPResponse{Status: 201, ContentType: "text/x", Body: []byte("POST application/x hello")}},
		{"get", client.HTTPRequest{Method: "GET", URL: s.URL + "/x", MaxResponse: 100},
			client.HTTPResponse{Status: 201, ContentType: "text/x", Body: []byte("GET  ")}},
		{"at the bound", client.HTTPRequest{Method: "GET", URL: s.URL + "/big", MaxResponse: 11},
			client.HTTPResponse{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("01234567890")}},
		{"chunked at the bound", client.HTTPRequest{Method: "GET", URL: s.URL + "/big/chunked", MaxResponse: 11},
			client.HTTPResponse{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("01234567890")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tr.Do(t.Context(), &tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.want.Status || got.ContentType != tc.want.ContentType || string(got.Body) != string(tc.want.Body) {
				t.Errorf("got %d %q %q, want %d %q %q", got.Status, got.ContentType, got.Body, tc.want.Status, tc.want.ContentType, tc.want.Body)
			}
		})
	}
}

func TestDoFails(t *testing.T) {
	s := server(t)
	var ue *url.Error
	for _, tc := range []struct {
		name  string
		tr    client.Transport
		req   client.HTTPRequest
		check func(error) bool
	}{
		{"announced too large", httptransport.New(nil), client.HTTPRequest{Method: "GET", URL: s.URL + "/big", MaxResponse: 10},
			func(err error) bool { return errors.Is(err, client.ErrResponseTooLarge) }},
		{"announced too large, short body", httptransport.New(&http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, ContentLength: 11, Body: io.NopCloser(strings.NewReader("x")), Header: http.Header{}}, nil
		})}), client.HTTPRequest{Method: "GET", URL: "http://h/", MaxResponse: 10},
			func(err error) bool { return errors.Is(err, client.ErrResponseTooLarge) }},
		{"chunked too large", httptransport.New(nil), client.HTTPRequest{Method: "GET", URL: s.URL + "/big/chunked", MaxResponse: 10},
			func(err error) bool { return errors.Is(err, client.ErrResponseTooLarge) }},
		{"the client's timeout", httptransport.New(&http.Client{Timeout: 1}), client.HTTPRequest{Method: "GET", URL: s.URL + "/hang", MaxResponse: 10},
			func(err error) bool { return errors.As(err, &ue) && ue.Timeout() }},
		{"bad URL", httptransport.New(nil), client.HTTPRequest{Method: "GET", URL: "http://h/\x00", MaxResponse: 10},
			func(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "httptransport: ") }},
		{"refused", httptransport.New(nil), client.HTTPRequest{Method: "GET", URL: "http://127.0.0.1:1/", MaxResponse: 10},
			func(err error) bool { return errors.As(err, &ue) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, err := tc.tr.Do(t.Context(), &tc.req); !tc.check(err) {
				t.Errorf("got %v, %v", resp, err)
			}
		})
	}
}

// The round tripper of the given client carries the request.
func TestNewUsesTheClient(t *testing.T) {
	var seen bool
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		seen = true
		return &http.Response{StatusCode: 204, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}, nil
	})}
	resp, err := httptransport.New(hc).Do(t.Context(), &client.HTTPRequest{Method: "GET", URL: "http://h/", MaxResponse: 1})
	if err != nil || !seen || resp.Status != 204 {
		t.Fatalf("%v %v %v", resp, err, seen)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
