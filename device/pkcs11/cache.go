package pkcs11

import (
	"bytes"
	"container/list"
	"crypto/ecdsa"
	"sync"

	"github.com/wsca/wsca/device"
)

// keyCache is the LRU cache of unwrapped keys of a wrapped-mode device,
// by kid, at most max entries. An entry is a session object on the token
// (handle h) and the blob it came from; it is found only for the same
// owner and the same blob bytes, so the cache never lets a key be used
// with a blob or owner that was not presented with it (the caller decides
// whether a key may be used at all; the cache only saves an unwrap).
//
// An entry in use (refs > 0) that is evicted or replaced is destroyed
// when its last user releases it, so the token holds at most max objects
// plus one per operation in flight. The cache does not call the token:
// its methods return the handles the caller must destroy.
type keyCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *cacheEntry, most recently used first
	m   map[device.KID]*list.Element
}

type cacheEntry struct {
	kid   device.KID
	owner device.Owner
	blob  []byte
	pub   *ecdsa.PublicKey
	h     uint // p11.ObjectHandle, kept as uint so this file needs no cgo

	refs int
	gone bool // out of the cache; destroy at the last release
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, ll: list.New(), m: make(map[device.KID]*list.Element)}
}

// acquire returns the entry for ref, in use until released, or nil.
func (c *keyCache) acquire(ref device.Ref) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[ref.KID]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if e.owner != ref.Owner || !bytes.Equal(e.blob, ref.Wrapped) {
		return nil
	}
	c.ll.MoveToFront(el)
	e.refs++
	return e
}

// insert adds e (in use by its caller, refs 1) in place of any entry for
// its kid and evicts the least recently used entries beyond max. It
// returns the handles to destroy now.
func (c *keyCache) insert(e *cacheEntry) (destroy []uint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[e.kid]; ok {
		destroy = c.drop(el, destroy)
	}
	c.m[e.kid] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		destroy = c.drop(c.ll.Back(), destroy)
	}
	return destroy
}

// drop takes el out of the cache; its object is destroyed now if unused,
// else at its last release.
func (c *keyCache) drop(el *list.Element, destroy []uint) []uint {
	e := el.Value.(*cacheEntry)
	c.ll.Remove(el)
	delete(c.m, e.kid)
	e.gone = true
	if e.refs == 0 {
		destroy = append(destroy, e.h)
	}
	return destroy
}

// release ends one use of e and reports whether its object must be
// destroyed now.
func (c *keyCache) release(e *cacheEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	return e.gone && e.refs == 0
}

// remove drops the owner's entry for kid (Destroy of a wrapped key, or a
// handle found stale) and returns the handles to destroy now.
func (c *keyCache) remove(kid device.KID, owner device.Owner) []uint {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[kid]
	if !ok || el.Value.(*cacheEntry).owner != owner {
		return nil
	}
	return c.drop(el, nil)
}

// drain empties the cache (Close) and returns the handles to destroy.
func (c *keyCache) drain() []uint {
	c.mu.Lock()
	defer c.mu.Unlock()
	var destroy []uint
	for c.ll.Len() > 0 {
		destroy = c.drop(c.ll.Back(), destroy)
	}
	return destroy
}

// len returns the number of cached keys.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
