package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Error is a handler error with the status and text a client may see,
// apart from the cause, which only goes to the log.
type Error struct {
	Code int
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%d %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("%d %s: %v", e.Code, e.Msg, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a client message and a logged cause.
func Errorf(code int, msg string, cause error) error {
	return &Error{Code: code, Msg: msg, Err: cause}
}

// HandlerFunc is an HTTP handler that returns its error instead of writing
// it; one boundary (handle) turns errors into responses and log lines.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h: an *Error becomes its status and message; a cancelled
// request is 499 in the log and nothing to the gone client; anything else,
// and any panic, is a generic 500 whose cause is logged once with the
// request id.
func (s *Server) handle(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				}
			}()
			return h(w, r)
		}()
		if err == nil {
			return
		}
		id := requestID(r.Context())
		var he *Error
		switch {
		case errors.As(err, &he):
			level := slog.LevelInfo
			if he.Code >= 500 {
				level = slog.LevelError
			}
			s.log.Log(r.Context(), level, "request failed", "request_id", id, "status", he.Code, "err", err)
			writeError(w, he.Code, he.Msg, id)
		case errors.Is(err, context.Canceled):
			s.log.InfoContext(r.Context(), "request cancelled", "request_id", id, "status", 499)
		default:
			s.log.ErrorContext(r.Context(), "request failed", "request_id", id, "status", 500, "err", err)
			writeError(w, http.StatusInternalServerError, "internal error", id)
		}
	})
}

// writeError answers with an RFC 9457 problem: title and status, and,
// for the clients that read them, the same text as "error" and the
// request id that finds the cause in the log.
func writeError(w http.ResponseWriter, code int, msg, id string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": msg, "status": code, "error": msg, "request_id": id,
	})
}
