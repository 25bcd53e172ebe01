package statuslist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/fxamacker/cbor/v2"
)

// Reference is the status_list member of a referenced token's status
// claim (draft §6): the index of the token in the list at URI.
type Reference struct {
	Index uint64 `json:"idx" cbor:"idx"`
	URI   string `json:"uri" cbor:"uri"`
}

// StatusClaim is the status claim of a referenced token:
// {"status_list": {"idx": …, "uri": …}}. Issuers embed it as the claim
// "status" (JWT) or 65535 (CWT, with [StatusClaim.MarshalCBOR]).
type StatusClaim struct {
	StatusList Reference `json:"status_list" cbor:"status_list"`
}

// MarshalCBOR writes the claim as deterministic CBOR.
func (c StatusClaim) MarshalCBOR() ([]byte, error) {
	type plain StatusClaim
	return cborEnc.Marshal(plain(c))
}

// ReferenceFromJSON reads status.status_list from the claims set of a JOSE
// referenced token (the JWT payload, or the processed SD-JWT payload).
func ReferenceFromJSON(claims []byte) (Reference, error) {
	var c struct {
		Status *struct {
			StatusList *struct {
				Idx *json.Number `json:"idx"`
				URI *string      `json:"uri"`
			} `json:"status_list"`
		} `json:"status"`
	}
	d := json.NewDecoder(bytes.NewReader(claims))
	d.UseNumber()
	if err := d.Decode(&c); err != nil {
		return Reference{}, fmt.Errorf("%w: status: %w", ErrClaims, err)
	}
	if d.More() {
		return Reference{}, fmt.Errorf("%w: data after the claims", ErrClaims)
	}
	if c.Status == nil || c.Status.StatusList == nil || c.Status.StatusList.Idx == nil || c.Status.StatusList.URI == nil {
		return Reference{}, fmt.Errorf("%w: status.status_list{idx,uri} is required", ErrClaims)
	}
	idx, err := c.Status.StatusList.Idx.Int64()
	if err != nil || idx < 0 {
		return Reference{}, fmt.Errorf("%w: idx is not a non-negative integer", ErrClaims)
	}
	return checkReference(Reference{Index: uint64(idx), URI: *c.Status.StatusList.URI})
}

// ReferenceFromCBOR reads 65535 (status) → status_list from the claims set
// of a CWT referenced token (the COSE payload, a CBOR map).
func ReferenceFromCBOR(claims []byte) (Reference, error) {
	var c struct {
		Status *struct {
			StatusList *struct {
				Idx *uint64 `cbor:"idx"`
				URI *string `cbor:"uri"`
			} `cbor:"status_list"`
		} `cbor:"65535,keyasint"`
	}
	if err := cborDec.Unmarshal(claims, &c); err != nil {
		return Reference{}, fmt.Errorf("%w: status: %w", ErrClaims, err)
	}
	if c.Status == nil || c.Status.StatusList == nil || c.Status.StatusList.Idx == nil || c.Status.StatusList.URI == nil {
		return Reference{}, fmt.Errorf("%w: %d (status) → status_list{idx,uri} is required", ErrClaims, cwtStatusClaim)
	}
	return checkReference(Reference{Index: *c.Status.StatusList.Idx, URI: *c.Status.StatusList.URI})
}

// checkReference requires an absolute URI.
func checkReference(r Reference) (Reference, error) {
	u, err := url.Parse(r.URI)
	if err != nil || !u.IsAbs() {
		return Reference{}, fmt.Errorf("%w: uri %q is not an absolute URI", ErrClaims, r.URI)
	}
	return r, nil
}

// StatusClaim writes itself as deterministic CBOR.
var _ cbor.Marshaler = StatusClaim{}
