//go:build cgo

// Command capi is the key manager's C ABI: build it with
//
//	go build -buildmode=c-shared -o libwscamanager.so ./manager/capi
//
// which also writes libwscamanager.h. Every call takes a manager handle
// from wsca_manager_open; strings are UTF-8 and NUL-terminated; every
// string or buffer returned is the caller's to release with wsca_free. On
// failure a call returns NULL (or 0, or -1) and, if err is not NULL, sets
// *err to JSON {"code": "...", "message": "..."} with a code of package
// manager/mobile.
//
// The PIN callback, when given, is called for every PIN a plugin needs; it
// writes the PIN into buf (at most cap bytes) and returns its length, or a
// negative number to cancel.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*wsca_pin_cb)(void *user, const char *plugin, const char *reason, char *buf, int cap);

static inline int wsca_call_pin(wsca_pin_cb cb, void *user, const char *plugin, const char *reason, char *buf, int cap) {
	return cb(user, plugin, reason, buf, cap);
}
*/
import "C"

import (
	"encoding/json"
	"errors"
	"runtime/cgo"
	"unsafe"

	"github.com/wsca/wsca/manager/mobile"
)

func main() {}

type pinBridge struct {
	cb   C.wsca_pin_cb
	user unsafe.Pointer
}

func (p pinBridge) RequestPIN(plugin, _ string, reason string) ([]byte, error) {
	if p.cb == nil {
		return nil, errors.New("no PIN callback")
	}
	cp, cr := C.CString(plugin), C.CString(reason)
	defer C.free(unsafe.Pointer(cp))
	defer C.free(unsafe.Pointer(cr))
	const capacity = 256
	buf := (*C.char)(C.calloc(capacity, 1))
	defer func() {
		C.memset(unsafe.Pointer(buf), 0, capacity)
		C.free(unsafe.Pointer(buf))
	}()
	n := C.wsca_call_pin(p.cb, p.user, cp, cr, buf, capacity)
	if n < 0 || n > capacity {
		return nil, errors.New("cancelled")
	}
	return C.GoBytes(unsafe.Pointer(buf), n), nil
}

func setErr(errp **C.char, err error) {
	if errp == nil || err == nil {
		return
	}
	var e *mobile.Error
	if !errors.As(err, &e) {
		e = &mobile.Error{Code: mobile.CodeInternal, Message: err.Error()}
	}
	b, _ := json.Marshal(map[string]string{"code": e.Code, "message": e.Message})
	*errp = C.CString(string(b))
}

func get(h C.uintptr_t) (*mobile.Manager, error) {
	if h == 0 {
		return nil, &mobile.Error{Code: mobile.CodeInvalidInput, Message: "no manager"}
	}
	m, ok := cgo.Handle(h).Value().(*mobile.Manager)
	if !ok {
		return nil, &mobile.Error{Code: mobile.CodeInvalidInput, Message: "not a manager handle"}
	}
	return m, nil
}

func jsonOut(v any, err error, errp **C.char) *C.char {
	if err != nil {
		setErr(errp, err)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		setErr(errp, err)
		return nil
	}
	return C.CString(string(b))
}

//export wsca_manager_open
func wsca_manager_open(stateDir *C.char, kek *C.uchar, kekLen C.int, cb C.wsca_pin_cb, user unsafe.Pointer, errp **C.char) C.uintptr_t {
	if stateDir == nil || kek == nil || kekLen <= 0 {
		setErr(errp, &mobile.Error{Code: mobile.CodeInvalidInput, Message: "state directory and KEK required"})
		return 0
	}
	k := C.GoBytes(unsafe.Pointer(kek), kekLen)
	defer clear(k)
	m, err := mobile.NewManager(C.GoString(stateDir), k, pinBridge{cb: cb, user: user})
	if err != nil {
		setErr(errp, err)
		return 0
	}
	return C.uintptr_t(cgo.NewHandle(m))
}

//export wsca_manager_close
func wsca_manager_close(h C.uintptr_t) {
	if h != 0 {
		cgo.Handle(h).Delete()
	}
}

//export wsca_register_r2ps
func wsca_register_r2ps(h C.uintptr_t, configJSON *C.char, errp **C.char) C.int {
	m, err := get(h)
	if err == nil {
		var cfg mobile.R2PSConfig
		if err = json.Unmarshal([]byte(C.GoString(configJSON)), &cfg); err != nil {
			err = &mobile.Error{Code: mobile.CodeInvalidInput, Message: "config: " + err.Error()}
		} else {
			err = m.RegisterR2PS(&cfg)
		}
	}
	if err != nil {
		setErr(errp, err)
		return -1
	}
	return 0
}

//export wsca_generate_key
func wsca_generate_key(h C.uintptr_t, requestJSON *C.char, errp **C.char) *C.char {
	m, err := get(h)
	if err != nil {
		return jsonOut(nil, err, errp)
	}
	var req mobile.GenerateRequest
	if requestJSON != nil {
		if s := C.GoString(requestJSON); s != "" {
			if err := json.Unmarshal([]byte(s), &req); err != nil {
				return jsonOut(nil, &mobile.Error{Code: mobile.CodeInvalidInput, Message: "request: " + err.Error()}, errp)
			}
		}
	}
	k, err := m.GenerateKey(&req)
	return jsonOut(k, err, errp)
}

//export wsca_sign
func wsca_sign(h C.uintptr_t, kid *C.char, digest *C.uchar, digestLen C.int, outLen *C.int, errp **C.char) *C.uchar {
	m, err := get(h)
	if err != nil || kid == nil || digest == nil || digestLen < 0 || outLen == nil {
		if err == nil {
			err = &mobile.Error{Code: mobile.CodeInvalidInput, Message: "missing argument"}
		}
		setErr(errp, err)
		return nil
	}
	res, err := m.Sign(C.GoString(kid), C.GoBytes(unsafe.Pointer(digest), digestLen))
	if err != nil {
		setErr(errp, err)
		return nil
	}
	*outLen = C.int(len(res.Value))
	return (*C.uchar)(C.CBytes(res.Value))
}

//export wsca_list_keys
func wsca_list_keys(h C.uintptr_t, errp **C.char) *C.char {
	m, err := get(h)
	if err != nil {
		return jsonOut(nil, err, errp)
	}
	l, err := m.ListKeys()
	if err != nil {
		return jsonOut(nil, err, errp)
	}
	keys := make([]*mobile.Key, 0, l.Len())
	for i := range l.Len() {
		keys = append(keys, l.Get(i))
	}
	return jsonOut(map[string]any{"keys": keys, "failed": l.Failed}, nil, errp)
}

//export wsca_delete_key
func wsca_delete_key(h C.uintptr_t, kid *C.char, errp **C.char) C.int {
	m, err := get(h)
	if err == nil {
		err = m.DeleteKey(C.GoString(kid))
	}
	if err != nil {
		setErr(errp, err)
		return -1
	}
	return 0
}

//export wsca_free
func wsca_free(p unsafe.Pointer) { C.free(p) }
