package statuslists

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/store"
)

// Handler serves GET (and HEAD) /statuslists/{id}: the stored token in the
// format the Accept header prefers (statuslist+jwt by default, 406 when
// neither is acceptable), with a strong ETag (304 on If-None-Match),
// Cache-Control max-age of at most ttl and never past the token's exp,
// Vary: Accept; 404 for an unknown list and 410 for a retired one. A list
// without a stored token yet is published first.
func (p *Publisher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /statuslists/{id}", p.serve)
	return mux
}

func (p *Publisher) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	format, media, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		http.Error(w, "acceptable: "+statuslist.MediaTypeJWT+", "+statuslist.MediaTypeCWT, http.StatusNotAcceptable)
		return
	}
	if !validID(id) {
		http.NotFound(w, r)
		return
	}
	l, err := p.st.GetStatusList(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
		return
	case err != nil:
		p.fail(w, "get status list", id, err)
		return
	case l.State == store.StatusListRetired:
		http.Error(w, "status list retired", http.StatusGone)
		return
	}
	tok, err := p.st.GetStatusToken(ctx, id, format)
	if errors.Is(err, store.ErrNotFound) {
		if err = p.Publish(ctx, id); err == nil {
			tok, err = p.st.GetStatusToken(ctx, id, format)
		}
	}
	if err != nil {
		p.fail(w, "get status token", id, err)
		return
	}
	h := w.Header()
	h.Set("Vary", "Accept")
	h.Set("ETag", tok.ETag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(p.maxAge(tok)))
	if etagMatch(r.Header.Get("If-None-Match"), tok.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", media)
	h.Set("Content-Length", strconv.Itoa(len(tok.Token)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(tok.Token)
	}
}

// maxAge is ttl, cut short so that a cache never holds a token past its
// exp (issued_at + Lifetime).
func (p *Publisher) maxAge(tok store.StatusToken) int {
	left := tok.IssuedAt.Truncate(time.Second).Add(p.cfg.Lifetime).Sub(p.cfg.Now())
	return int(max(0, min(p.cfg.TTL, left)) / time.Second)
}

// fail answers 500 with a generic body and logs the detail.
func (p *Publisher) fail(w http.ResponseWriter, what, id string, err error) {
	p.cfg.Logger.Error("status lists: "+what, "list", id, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// validID accepts the ids the store makes (lowercase base32) and keeps
// junk away from the database.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// negotiate picks the token format from Accept (RFC 9110 §12.5.1): the
// acceptable media type with the highest q, JWT on a tie or without
// Accept.
func negotiate(accept []string) (format, media string, ok bool) {
	if len(accept) == 0 {
		return store.StatusFormatJWT, statuslist.MediaTypeJWT, true
	}
	// A media type named outright overrides the ranges that cover it.
	var qJWT, qCWT, qAny float64
	var setJWT, setCWT bool
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			switch mt {
			case statuslist.MediaTypeJWT:
				qJWT, setJWT = max(qJWT, q), true
			case statuslist.MediaTypeCWT:
				qCWT, setCWT = max(qCWT, q), true
			case "application/*", "*/*":
				qAny = max(qAny, q)
			}
		}
	}
	if !setJWT {
		qJWT = qAny
	}
	if !setCWT {
		qCWT = qAny
	}
	switch {
	case qJWT == 0 && qCWT == 0:
		return "", "", false
	case qCWT > qJWT:
		return store.StatusFormatCWT, statuslist.MediaTypeCWT, true
	}
	return store.StatusFormatJWT, statuslist.MediaTypeJWT, true
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, tag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
