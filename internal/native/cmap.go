//go:build linux

package native

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// CMapService is the libqb service name of corosync's configuration map.
const CMapService = "cmap"

// cmap request and response ids (enum req_cmap_types, res_cmap_types),
// unchanged since corosync 2.0, whose table ends at TRACK_DELETE; 3.x adds
// SET_CURRENT_MAP = 9. The notification of a tracked key is response id 9.
const (
	CMapReqGet          = 2
	CMapReqIterInit     = 4
	CMapReqIterNext     = 5
	CMapReqIterFinalize = 6
	CMapReqTrackAdd     = 7
	CMapReqTrackDelete  = 8
	CMapResGet          = 2
	CMapResIterInit     = 4
	CMapResIterNext     = 5
	CMapResIterFinalize = 6
	CMapResTrackAdd     = 7
	CMapResNotify       = 9
)

// cmap value types (cmap_value_types_t) this package reads. A STRING's
// length counts its NUL.
const (
	CMapTypeUint32 = 6
	CMapTypeString = 11
)

// cmap track bits (CMAP_TRACK_*).
const (
	CMapTrackDelete = 1
	CMapTrackModify = 2
	CMapTrackAdd    = 4
	CMapTrackPrefix = 8
)

// mar_name_t is {u16 length aligned(8); u8 value[256] aligned(8)}.
const (
	cmapNameMax  = 256
	cmapNameSize = 8 + cmapNameMax
)

// Offsets of the cmap messages on 64-bit Linux (every field is aligned(8)).
const (
	cmapGetValue       = 40  // GET reply: value length @24, type @32, value @40
	cmapIterNextSize   = 297 // ITER_NEXT reply: key @24, value length @288, type @296 (304 with padding)
	cmapTrackAddSize   = 16 + cmapNameSize + 16
	cmapNotifyValues   = 336 // NOTIFY: cookie @24, key @32, event @296, types @304/@312, lengths @320/@328
	cmapHandleReplyLen = 32  // ITER_INIT and TRACK_ADD replies: a u64 handle @24
)

// putName writes key as a mar_name_t at b[off:]. corosync reads the value as
// a C string, so the key may hold no NUL; the buffer's zeroes terminate it.
func putName(b []byte, off int, key string) error {
	if len(key) == 0 || len(key) >= cmapNameMax || strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("cmap key %q: want 1 to %d bytes and no NUL", key, cmapNameMax-1)
	}
	le.PutUint16(b[off:], uint16(len(key)))
	copy(b[off+8:], key)
	return nil
}

// cmapName reads the mar_name_t at b[off:], which must lie within b.
func cmapName(b []byte, off int, what string) (string, error) {
	n := int(le.Uint16(b[off:]))
	if n > cmapNameMax {
		return "", fmt.Errorf("%w: %s: key of %d bytes, more than %d", errMalformed, what, n, cmapNameMax)
	}
	return string(b[off+8 : off+8+n]), nil
}

// EncodeCMapGet is cmap's GET: the key at 16 as a mar_name_t, then the size
// of the value buffer (u64 at 280; 0 asks for the length and type only).
func EncodeCMapGet(key string, valueLen uint64) ([]byte, error) {
	b := request(CMapReqGet, 16+cmapNameSize+8)
	if err := putName(b, 16, key); err != nil {
		return nil, err
	}
	le.PutUint64(b[16+cmapNameSize:], valueLen)
	return b, nil
}

// DecodeCMapGet decodes GET's reply: the value's length (u64 at 24), type
// (u8 at 32) and the value from 40. code is corosync's status; the rest is
// meaningful only when it is CS_OK. A reply to a request for the length
// alone carries no value: value is then empty.
func DecodeCMapGet(b []byte) (value []byte, typ uint8, code cs.Code, err error) {
	value, _, typ, code, err = DecodeCMapGetLen(b)
	return value, typ, code, err
}

// DecodeCMapGetLen is DecodeCMapGet that also returns the value's length as
// corosync gives it. value is nil when the reply does not hold the whole
// value, as when the request asked for the length only (buffer 0).
func DecodeCMapGetLen(b []byte) (value []byte, valueLen uint64, typ uint8, code cs.Code, err error) {
	h, err := DecodeResponse(b, CMapResGet)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if cs.Code(h.Error) != cs.OK {
		return nil, 0, 0, cs.Code(h.Error), nil
	}
	if err := need(b, cmapGetValue, "cmap get reply"); err != nil {
		return nil, 0, 0, 0, err
	}
	n := le.Uint64(b[24:])
	if n <= uint64(len(b)-cmapGetValue) {
		value = append([]byte{}, b[cmapGetValue:cmapGetValue+n]...)
	}
	return value, n, b[32], cs.OK, nil
}

// EncodeCMapIterInit is ITER_INIT over the keys that start with prefix.
func EncodeCMapIterInit(prefix string) ([]byte, error) {
	b := request(CMapReqIterInit, 16+cmapNameSize)
	if err := putName(b, 16, prefix); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeHandle decodes the replies that carry a u64 handle at 24 (ITER_INIT,
// TRACK_ADD).
func decodeHandle(b []byte, want int32, what string) (uint64, cs.Code, error) {
	h, err := DecodeResponse(b, want)
	if err != nil {
		return 0, 0, err
	}
	if cs.Code(h.Error) != cs.OK {
		return 0, cs.Code(h.Error), nil
	}
	if err := need(b, cmapHandleReplyLen, what); err != nil {
		return 0, 0, err
	}
	return le.Uint64(b[24:]), cs.OK, nil
}

// DecodeCMapIterInit decodes ITER_INIT's reply: the iterator's handle.
func DecodeCMapIterInit(b []byte) (handle uint64, code cs.Code, err error) {
	return decodeHandle(b, CMapResIterInit, "cmap iter_init reply")
}

// EncodeCMapIterNext is ITER_NEXT of the iterator handle.
func EncodeCMapIterNext(handle uint64) []byte {
	b := request(CMapReqIterNext, 24)
	le.PutUint64(b[16:], handle)
	return b
}

// EncodeCMapIterFinalize is ITER_FINALIZE of the iterator handle.
func EncodeCMapIterFinalize(handle uint64) []byte {
	b := request(CMapReqIterFinalize, 24)
	le.PutUint64(b[16:], handle)
	return b
}

// CMapKey is one key of an iteration: its name, and the length and type of
// its value (which ITER_NEXT does not carry).
type CMapKey struct {
	Name string
	Len  uint64
	Type uint8
}

// DecodeCMapIterNext decodes ITER_NEXT's reply. The end of the iteration is
// code CS_ERR_NO_SECTIONS.
func DecodeCMapIterNext(b []byte) (k CMapKey, code cs.Code, err error) {
	h, err := DecodeResponse(b, CMapResIterNext)
	if err != nil {
		return k, 0, err
	}
	if cs.Code(h.Error) != cs.OK {
		return k, cs.Code(h.Error), nil
	}
	if err := need(b, cmapIterNextSize, "cmap iter_next reply"); err != nil {
		return k, 0, err
	}
	k.Name, err = cmapName(b, 24, "cmap iter_next reply")
	if err != nil {
		return CMapKey{}, 0, err
	}
	k.Len, k.Type = le.Uint64(b[288:]), b[296]
	return k, cs.OK, nil
}

// EncodeCMapTrackAdd is TRACK_ADD of key (a prefix with CMapTrackPrefix)
// for the CMapTrack* events in trackType; cookie comes back in each
// notification.
func EncodeCMapTrackAdd(key string, trackType int32, cookie uint64) ([]byte, error) {
	b := request(CMapReqTrackAdd, cmapTrackAddSize)
	if err := putName(b, 16, key); err != nil {
		return nil, err
	}
	le.PutUint32(b[16+cmapNameSize:], uint32(trackType))
	le.PutUint64(b[16+cmapNameSize+8:], cookie)
	return b, nil
}

// DecodeCMapTrackAdd decodes TRACK_ADD's reply: the track's handle.
func DecodeCMapTrackAdd(b []byte) (handle uint64, code cs.Code, err error) {
	return decodeHandle(b, CMapResTrackAdd, "cmap track_add reply")
}

// CMapNotification is cmap's notification of a change to a tracked key.
type CMapNotification struct {
	Cookie           uint64 // TRACK_ADD's
	Key              string
	Event            int32 // one CMapTrack* bit
	NewType, OldType uint8
	New, Old         []byte // the values; a deleted key has no new value, an added one no old
}

// DecodeCMapNotify decodes a NOTIFY notification (id 9). Both values must
// lie within the message.
func DecodeCMapNotify(b []byte) (n CMapNotification, err error) {
	h, err := qbipc.ParseResponseHeader(b)
	if err != nil {
		return n, err
	}
	if h.ID != CMapResNotify {
		return n, fmt.Errorf("%w: cmap notification id %d, want %d", errMalformed, h.ID, CMapResNotify)
	}
	if err := need(b, cmapNotifyValues, "cmap notification"); err != nil {
		return n, err
	}
	key, err := cmapName(b, 32, "cmap notification")
	if err != nil {
		return n, err
	}
	nl, ol := le.Uint64(b[320:]), le.Uint64(b[328:])
	room := uint64(len(b) - cmapNotifyValues)
	if nl > room || ol > room-nl {
		return n, fmt.Errorf("%w: cmap notification of %d bytes claims values of %d and %d bytes", errMalformed, len(b), nl, ol)
	}
	v := b[cmapNotifyValues:]
	return CMapNotification{
		Cookie: le.Uint64(b[24:]), Key: key, Event: int32(le.Uint32(b[296:])),
		NewType: b[304], OldType: b[312],
		New: append([]byte{}, v[:nl]...), Old: append([]byte{}, v[nl:nl+ol]...),
	}, nil
}

// cmapUint32 is a UINT32 value, as corosync's own readers take it: any other
// type does not count.
func cmapUint32(v []byte, typ uint8) (uint32, bool) {
	if typ != CMapTypeUint32 || len(v) != 4 {
		return 0, false
	}
	return le.Uint32(v), true
}

// cmapString is a STRING value without its NUL.
func cmapString(v []byte, typ uint8) (string, bool) {
	if typ != CMapTypeString {
		return "", false
	}
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v), true
}

// cmapGet runs one GET on ipc, a connection to a server of family f.
// service is the logical service name the guard looks up (cmap's), whatever
// the socket is called.
func cmapGet(ctx context.Context, ipc *qbipc.Conn, f Family, service, key string, valueLen uint64) ([]byte, uint8, cs.Code, error) {
	v, _, typ, code, err := cmapGetLen(ctx, ipc, f, service, key, valueLen)
	return v, typ, code, err
}

func cmapGetLen(ctx context.Context, ipc *qbipc.Conn, f Family, service, key string, valueLen uint64) ([]byte, uint64, uint8, cs.Code, error) {
	const op = "cmap_get"
	req, err := EncodeCMapGet(key, valueLen)
	if err != nil {
		return nil, 0, 0, 0, &cs.Error{Op: op, Code: cs.ErrInvalidParam, Err: err}
	}
	resp, err := guardedRequest(ctx, ipc, f, service, op, req, CMapResGet)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	v, n, typ, code, err := DecodeCMapGetLen(resp)
	if err == nil && code == cs.OK && valueLen > 0 && (v == nil || n > valueLen) {
		err = fmt.Errorf("%w: cmap get reply of %d bytes for a %d-byte buffer claims %d bytes", errMalformed, len(resp), valueLen, n)
	}
	if err != nil {
		return nil, 0, 0, 0, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: fmt.Errorf("%s: %w", key, err)}
	}
	return v, n, typ, code, nil
}

// guardedRequest is the one way this package sends a request: it refuses,
// before anything reaches corosync, an id that service (the logical name,
// such as "quorum") of a server of family f does not have (mayRequest), then
// sends req and waits for the response with id want or a bare error reply.
func guardedRequest(ctx context.Context, ipc *qbipc.Conn, f Family, service, op string, req []byte, want int32) ([]byte, error) {
	id := int32(le.Uint32(req))
	if !mayRequest(f, service, id) {
		return nil, &cs.Error{Op: op, Code: cs.ErrNotSupported,
			Err: fmt.Errorf("request %d of corosync's %s service is not sent to %v, which dies on ids it does not have", id, service, f)}
	}
	resp, err := ipc.Request(ctx, req, func(h qbipc.ResponseHeader) bool {
		return h.ID == want || isBareError(h)
	})
	if err != nil {
		return nil, relabel(op, err)
	}
	return resp, nil
}

// The keys the picture reads and tracks.
const (
	providerKey    = "quorum.provider"
	nodelistPrefix = "nodelist.node."
	reloadKey      = "config.totemconfig_reload_in_progress"
)

// Cookies of this package's cmap tracks, echoed in their notifications.
const (
	cookieNodelist uint64 = 1 + iota
	cookieReload
)

// cmapDefaultBuffer is the value buffer of a GET whose value's length is not
// known: one round trip for any provider name or address.
const cmapDefaultBuffer = 256

// maxNodelistKeys bounds an iteration, so that a server that never ends one
// cannot keep the client busy: corosync has at most 384 nodes, each with a
// handful of keys.
const maxNodelistKeys = 1 << 16

// cmapConn is a connection to cmap with the requests the picture needs.
// Requests may run concurrently: each is one round trip, and an iteration's
// handle is its own.
type cmapConn struct {
	ipc    *qbipc.Conn
	family Family

	mu sync.Mutex
	// stale are iterators that are open in corosync though their caller
	// left (its context ended); the next iteration finalizes them.
	stale []uint64
	// tracked says which of the cookies' tracks corosync has added.
	tracked map[uint64]bool
	// trackSem serialises trackAdd, within the callers' contexts.
	trackSem chan struct{}
}

func newCMapConn(ipc *qbipc.Conn, f Family) *cmapConn {
	return &cmapConn{ipc: ipc, family: f, tracked: map[uint64]bool{}, trackSem: make(chan struct{}, 1)}
}

func (c *cmapConn) request(ctx context.Context, op string, req []byte, want int32) ([]byte, error) {
	return guardedRequest(ctx, c.ipc, c.family, CMapService, op, req, want)
}

// get reads key's value with one GET when its length is at most hint (0:
// not known), else with two more: its length, then the value. code is
// corosync's status (CS_ERR_NOT_EXIST for a missing key).
func (c *cmapConn) get(ctx context.Context, key string, hint uint64) ([]byte, uint8, cs.Code, error) {
	if hint == 0 {
		hint = cmapDefaultBuffer
	}
	limit := uint64(c.ipc.MaxMsgSize()) - cmapGetValue
	for range 3 {
		v, _, typ, code, err := cmapGetLen(ctx, c.ipc, c.family, CMapService, key, hint)
		if err != nil || code != cs.ErrInvalidParam {
			return v, typ, code, err
		}
		// corosync refuses a buffer shorter than the value: the value grew
		// since hint was learnt, or hint was a guess.
		_, n, _, code, err := cmapGetLen(ctx, c.ipc, c.family, CMapService, key, 0)
		if err != nil || code != cs.OK {
			return nil, 0, code, err
		}
		if n > limit {
			return nil, 0, 0, &cs.Error{Op: "cmap_get", Code: cs.ErrTooBig,
				Err: fmt.Errorf("%s: value of %d bytes, more than a message holds", key, n)}
		}
		if n <= hint {
			// Not a short buffer: corosync refuses the request itself.
			return nil, 0, cs.ErrInvalidParam, nil
		}
		hint = n
	}
	return nil, 0, 0, &cs.Error{Op: "cmap_get", Code: cs.ErrTryAgain, Err: fmt.Errorf("%s: the value kept growing", key)}
}

// getString reads a STRING key: "" with ok false when it does not exist.
func (c *cmapConn) getString(ctx context.Context, key string, hint uint64) (s string, ok bool, err error) {
	v, typ, code, err := c.get(ctx, key, hint)
	switch {
	case err != nil:
		return "", false, err
	case code == cs.ErrNotExist:
		return "", false, nil
	case code != cs.OK:
		return "", false, &cs.Error{Op: "cmap_get", Code: code, Err: fmt.Errorf("reading %s", key)}
	}
	s, ok = cmapString(v, typ)
	if !ok {
		return "", false, &cs.Error{Op: "cmap_get", Code: cs.ErrInvalidParam, Err: fmt.Errorf("%s is of cmap type %d, not a string", key, typ)}
	}
	return s, true, nil
}

// provider reads quorum.provider: "" when no quorum provider is configured.
func (c *cmapConn) provider(ctx context.Context) (string, error) {
	p, _, err := c.getString(ctx, providerKey, 0)
	return p, err
}

// iterate calls fn for every key that starts with prefix, then finalizes
// the iterator whatever happened; an iterator it cannot finalize (ctx ended)
// is finalized by the next iteration, or freed by corosync with the
// connection. Iterators left over by earlier calls are finalized first.
func (c *cmapConn) iterate(ctx context.Context, prefix string, fn func(CMapKey) error) error {
	if err := c.finalizeStale(ctx); err != nil {
		return err
	}
	h, err := c.iterInit(ctx, prefix)
	if err != nil {
		return err
	}
	err = c.iterKeys(ctx, h, fn)
	if ferr := c.iterFinalize(ctx, h); ferr != nil {
		if ctx.Err() != nil {
			c.mu.Lock()
			c.stale = append(c.stale, h)
			c.mu.Unlock()
		}
		if err == nil {
			err = ferr
		}
	}
	return err
}

func (c *cmapConn) iterKeys(ctx context.Context, h uint64, fn func(CMapKey) error) error {
	const op = "cmap_iter_next"
	req := EncodeCMapIterNext(h)
	for range maxNodelistKeys {
		resp, err := c.request(ctx, op, req, CMapResIterNext)
		if err != nil {
			return err
		}
		k, code, err := DecodeCMapIterNext(resp)
		switch {
		case err != nil:
			return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
		case code == cs.ErrNoSections:
			return nil
		case code != cs.OK:
			return &cs.Error{Op: op, Code: code}
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: fmt.Errorf("%w: an iteration of more than %d keys", errMalformed, maxNodelistKeys)}
}

// detached sends req on a goroutine of its own that no context ends (only
// Close, or the server's end, does), and waits for the reply within ctx:
// for requests whose effect in corosync must be known whoever waited (an
// iterator to finalize, a track not to add twice). reply gets the reply
// under c.mu as soon as it comes, and whether the caller left before;
// after, if set, runs once the request is over.
func (c *cmapConn) detached(ctx context.Context, op string, req []byte, want int32, reply func(resp []byte, abandoned bool), after func()) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		if after != nil {
			after()
		}
		return nil, err
	}
	type result struct {
		resp []byte
		err  error
	}
	var abandoned bool
	done := make(chan result, 1)
	go func() {
		if after != nil {
			defer after()
		}
		resp, err := c.request(context.Background(), op, req, want)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err == nil {
			reply(resp, abandoned)
		}
		if !abandoned {
			done <- result{resp, err}
		}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		select {
		case r := <-done: // it came as ctx ended: the caller has it
			return r.resp, r.err
		default:
		}
		abandoned = true
		return nil, fmt.Errorf("waiting for the server's response: %w", ctx.Err())
	}
}

// iterInit opens an iterator. If ctx ends first, the handle is still
// learnt and left to the next iteration to finalize: otherwise the iterator
// would stay open in corosync until the connection closes.
func (c *cmapConn) iterInit(ctx context.Context, prefix string) (uint64, error) {
	const op = "cmap_iter_init"
	req, err := EncodeCMapIterInit(prefix)
	if err != nil {
		return 0, &cs.Error{Op: op, Code: cs.ErrInvalidParam, Err: err}
	}
	resp, err := c.detached(ctx, op, req, CMapResIterInit, func(resp []byte, abandoned bool) {
		if h, code, err := DecodeCMapIterInit(resp); abandoned && err == nil && code == cs.OK {
			c.stale = append(c.stale, h)
		}
	}, nil)
	if err != nil {
		return 0, err
	}
	h, code, err := DecodeCMapIterInit(resp)
	switch {
	case err != nil:
		return 0, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	case code != cs.OK:
		return 0, &cs.Error{Op: op, Code: code, Err: fmt.Errorf("prefix %s", prefix)}
	}
	return h, nil
}

func (c *cmapConn) iterFinalize(ctx context.Context, h uint64) error {
	const op = "cmap_iter_finalize"
	resp, err := c.request(ctx, op, EncodeCMapIterFinalize(h), CMapResIterFinalize)
	if err != nil {
		return err
	}
	hd, err := DecodeResponse(resp, CMapResIterFinalize)
	if err != nil {
		return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	}
	// A handle corosync no longer knows is finalized already.
	if code := cs.Code(hd.Error); code != cs.OK && code != cs.ErrBadHandle {
		return &cs.Error{Op: op, Code: code}
	}
	return nil
}

func (c *cmapConn) finalizeStale(ctx context.Context) error {
	c.mu.Lock()
	stale := c.stale
	c.stale = nil
	c.mu.Unlock()
	for i, h := range stale {
		if err := c.iterFinalize(ctx, h); err != nil {
			if ctx.Err() != nil {
				c.mu.Lock()
				c.stale = append(c.stale, stale[i:]...)
				c.mu.Unlock()
			}
			return err
		}
	}
	return nil
}

// trackAdd adds the track of cookie unless corosync has it already: a
// track added twice would notify twice. If ctx ends first, the reply still
// says whether corosync added it, and the next trackAdd waits for it.
func (c *cmapConn) trackAdd(ctx context.Context, key string, trackType int32, cookie uint64) error {
	const op = "cmap_track_add"
	req, err := EncodeCMapTrackAdd(key, trackType, cookie)
	if err != nil {
		return &cs.Error{Op: op, Code: cs.ErrInvalidParam, Err: err}
	}
	select {
	case c.trackSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	done := c.tracked[cookie]
	c.mu.Unlock()
	if done {
		<-c.trackSem
		return nil
	}
	// The semaphore is released when the request is over, not when the
	// caller leaves: until then nobody knows whether the track exists.
	resp, err := c.detached(ctx, op, req, CMapResTrackAdd, func(resp []byte, _ bool) {
		if _, code, err := DecodeCMapTrackAdd(resp); err == nil && code == cs.OK {
			c.tracked[cookie] = true
		}
	}, func() { <-c.trackSem })
	if err != nil {
		return err
	}
	_, code, err := DecodeCMapTrackAdd(resp)
	if err != nil {
		return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	}
	if code != cs.OK {
		return &cs.Error{Op: op, Code: code, Err: fmt.Errorf("tracking %s", key)}
	}
	return nil
}

// nodeKeys are what one nodelist.node.<n> entry holds of the keys the
// picture reads.
type nodeKeys struct {
	pos                        uint64
	nodeid, name, ring0, votes *CMapKey
}

// nodelist reads the configured nodes as corosync-quorumtool names them: on
// corosync 2.x by ring0_addr (its quorumtool reads no other key), later by
// name, else ring0_addr (where quorumtool resolves the node's first address
// instead). A node whose nodeid is missing or not a UINT32 is left out, as
// corosync's readers leave it out; a quorum_votes that is not a UINT32
// counts as not set.
func (c *cmapConn) nodelist(ctx context.Context) ([]model.ConfNode, error) {
	byPos := map[uint64]*nodeKeys{}
	err := c.iterate(ctx, nodelistPrefix, func(k CMapKey) error {
		pos, leaf, ok := strings.Cut(strings.TrimPrefix(k.Name, nodelistPrefix), ".")
		if !ok || pos == "" || strings.TrimLeft(pos, "0123456789") != "" {
			return nil
		}
		p, err := strconv.ParseUint(pos, 10, 32)
		if err != nil {
			return nil
		}
		nk := byPos[p]
		if nk == nil {
			nk = &nodeKeys{pos: p}
			byPos[p] = nk
		}
		switch leaf {
		case "nodeid":
			nk.nodeid = &k
		case "name":
			nk.name = &k
		case "ring0_addr":
			nk.ring0 = &k
		case "quorum_votes":
			nk.votes = &k
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	entries := make([]*nodeKeys, 0, len(byPos))
	for _, nk := range byPos {
		entries = append(entries, nk)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].pos < entries[j].pos })
	var nodes []model.ConfNode
	for _, nk := range entries {
		n, ok, err := c.node(ctx, nk)
		if err != nil {
			return nil, err
		}
		if ok {
			nodes = append(nodes, n)
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}

// node reads one entry's values; ok is false when it has no usable nodeid
// (or lost it since the iteration).
func (c *cmapConn) node(ctx context.Context, nk *nodeKeys) (model.ConfNode, bool, error) {
	var n model.ConfNode
	key := func(leaf string) string { return nodelistPrefix + strconv.FormatUint(nk.pos, 10) + "." + leaf }
	u32 := func(k *CMapKey, leaf string) (uint32, bool, error) {
		if k == nil || k.Type != CMapTypeUint32 {
			return 0, false, nil
		}
		v, typ, code, err := c.get(ctx, key(leaf), 4)
		switch {
		case err != nil:
			return 0, false, err
		case code == cs.ErrNotExist:
			return 0, false, nil
		case code != cs.OK:
			return 0, false, &cs.Error{Op: "cmap_get", Code: code, Err: fmt.Errorf("reading %s", key(leaf))}
		}
		x, ok := cmapUint32(v, typ)
		return x, ok, nil
	}
	str := func(k *CMapKey, leaf string) (string, error) {
		if k == nil || k.Type != CMapTypeString {
			return "", nil
		}
		s, _, err := c.getString(ctx, key(leaf), k.Len)
		var ce *cs.Error
		if errors.As(err, &ce) && ce.Code == cs.ErrInvalidParam {
			return "", nil // retyped since the iteration
		}
		return s, err
	}
	id, ok, err := u32(nk.nodeid, "nodeid")
	if err != nil || !ok {
		return n, false, err
	}
	n.ID = id
	if c.family != Corosync2 {
		if n.Name, err = str(nk.name, "name"); err != nil {
			return n, false, err
		}
	}
	if n.Name == "" {
		if n.Name, err = str(nk.ring0, "ring0_addr"); err != nil {
			return n, false, err
		}
	}
	if n.Votes, _, err = u32(nk.votes, "quorum_votes"); err != nil {
		return n, false, err
	}
	return n, true, nil
}
