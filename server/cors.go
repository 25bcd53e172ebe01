package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/wsca/wsca/r2ps"
)

// ErrBadOrigin: a configured CORS origin is not a serialised origin.
var ErrBadOrigin = errors.New("server: not a CORS origin")

// corsSchemes are the schemes a wallet's origin may have: a web page, or
// a browser extension's own pages.
var corsSchemes = []string{"https", "http", "chrome-extension", "moz-extension"}

// ValidateOrigin checks that o is a serialised origin (RFC 6454 §6.1) a
// wallet runs in: scheme://host[:port], lower case, with no path, query,
// fragment or user information, and never "*" or "null".
func ValidateOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %q: %v", ErrBadOrigin, o, err)
	case !slices.Contains(corsSchemes, u.Scheme):
		return fmt.Errorf("%w: %q: the scheme must be one of %s", ErrBadOrigin, o, strings.Join(corsSchemes, ", "))
	case u.Host == "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Path != "":
		return fmt.Errorf("%w: %q: want scheme://host[:port] and nothing more", ErrBadOrigin, o)
	case u.String() != o || strings.ToLower(o) != o:
		return fmt.Errorf("%w: %q: not in serialised form (lower case, no trailing slash)", ErrBadOrigin, o)
	case u.Scheme == "https" && u.Port() == "443" || u.Scheme == "http" && u.Port() == "80":
		// A browser never sends the scheme's default port: it would never match.
		return fmt.Errorf("%w: %q: leave out the scheme's default port", ErrBadOrigin, o)
	}
	return nil
}

// corsPaths are the public endpoints a wallet in a browser calls: R2PS,
// its server keys, and the attestation keys. The admin API and everything
// else never answer CORS.
func corsPath(p string) bool {
	return p == r2ps.Path || p == r2ps.KeysPath || p == JWKSPath
}

// cors answers preflights and marks responses readable for the allowed
// origins on the wallet's endpoints. Without origins it is next itself.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !corsPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
