package attest

import (
	"fmt"
	"net/netip"
	"net/url"
	"time"
)

// StatusRef points at one entry of a Token Status List
// (draft-ietf-oauth-status-list-21 §6.1: status.status_list.{idx, uri}).
type StatusRef struct {
	Idx uint64 `json:"idx"`
	URI string `json:"uri"`
}

// statusClaim is the TS3 v1.5 status member of an attestation,
// key_storage_status (key attestation) or client_status (wallet instance
// attestation):
//
//	{"status": {"status_list": {"idx": 412, "uri": "https://…"}}, "exp": 1767225600}
//
// status is a Token Status List reference as in a referenced token; exp is
// the time until which the Wallet Provider keeps that entry current.
type statusClaim struct {
	Status struct {
		StatusList *StatusRef `json:"status_list"`
	} `json:"status"`
	Exp NumericDate `json:"exp"`
}

type statusMembers statusClaim

// UnmarshalJSON implements json.Unmarshaler under decodeObject's rules.
func (s *statusClaim) UnmarshalJSON(b []byte) error {
	return decodeObject(b, (*statusMembers)(s))
}

// statusListMembers is StatusRef without methods.
type statusListMembers StatusRef

// UnmarshalJSON implements json.Unmarshaler under decodeObject's rules.
func (r *StatusRef) UnmarshalJSON(b []byte) error {
	return decodeObject(b, (*statusListMembers)(r))
}

// newStatus builds the claim, checking the URI.
func newStatus(ref StatusRef, exp time.Time) (*statusClaim, error) {
	if err := checkStatusURI(ref.URI); err != nil {
		return nil, err
	}
	s := &statusClaim{Exp: NumericDate(exp.Unix())}
	r := ref
	s.Status.StatusList = &r
	return s, nil
}

// check validates a status claim read from a token.
func (s *statusClaim) check() (StatusRef, time.Time, error) {
	if s == nil || s.Status.StatusList == nil {
		return StatusRef{}, time.Time{}, fmt.Errorf("%w: no status_list", ErrStatus)
	}
	if err := checkStatusURI(s.Status.StatusList.URI); err != nil {
		return StatusRef{}, time.Time{}, err
	}
	if s.Exp == 0 {
		return StatusRef{}, time.Time{}, fmt.Errorf("%w: no exp", ErrStatus)
	}
	return *s.Status.StatusList, time.Unix(int64(s.Exp), 0), nil
}

// checkStatusURI requires an absolute https URI (http only for a loopback
// host, for development), without fragment.
func checkStatusURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%w: status list uri is not an absolute URL", ErrStatus)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip, err := netip.ParseAddr(u.Hostname()); u.Hostname() == "localhost" || err == nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%w: status list uri is not https", ErrStatus)
}
