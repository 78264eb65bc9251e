//go:build linux

package native

import (
	"context"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// CMapService is the libqb service name of corosync's configuration map.
const CMapService = "cmap"

// cmap request and response ids (enum req_cmap_types, res_cmap_types),
// unchanged since corosync 2.0; 3.x adds SET_CURRENT_MAP = 9.
const (
	CMapReqGet         = 2
	CMapReqTrackDelete = 8
	CMapResGet         = 2
)

// mar_name_t is {u16 length aligned(8); u8 value[256] aligned(8)}.
const (
	cmapNameMax  = 256
	cmapNameSize = 8 + cmapNameMax
)

// EncodeCMapGet is cmap's GET: the key at 16 as a mar_name_t, then the size
// of the value buffer (u64 at 280; 0 asks for the length and type only).
func EncodeCMapGet(key string, valueLen uint64) ([]byte, error) {
	if len(key) == 0 || len(key) >= cmapNameMax {
		return nil, fmt.Errorf("cmap key %q: want 1 to %d bytes", key, cmapNameMax-1)
	}
	b := request(CMapReqGet, 16+cmapNameSize+8)
	le.PutUint16(b[16:], uint16(len(key)))
	copy(b[24:], key) // NUL-terminated by the zeroed buffer
	le.PutUint64(b[16+cmapNameSize:], valueLen)
	return b, nil
}

// DecodeCMapGet decodes GET's reply: the value's length (u64 at 24), type
// (u8 at 32) and the value from 40. code is corosync's status; the rest is
// meaningful only when it is CS_OK.
func DecodeCMapGet(b []byte) (value []byte, typ uint8, code cs.Code, err error) {
	h, err := DecodeResponse(b, CMapResGet)
	if err != nil {
		return nil, 0, 0, err
	}
	if cs.Code(h.Error) != cs.OK {
		return nil, 0, cs.Code(h.Error), nil
	}
	if len(b) < 40 {
		return nil, 0, 0, fmt.Errorf("%w: cmap get reply of %d bytes", errMalformed, len(b))
	}
	n := le.Uint64(b[24:])
	if n > uint64(len(b)-40) {
		// A request for the length alone gets the length and no value.
		n = 0
	}
	return append([]byte(nil), b[40:40+n]...), b[32], cs.OK, nil
}

// cmapGet runs one GET on ipc, a connection to a server of family f.
// service is the logical service name the guard looks up (cmap's), whatever
// the socket is called.
func cmapGet(ctx context.Context, ipc *qbipc.Conn, f Family, service, key string, valueLen uint64) ([]byte, uint8, cs.Code, error) {
	const op = "cmap_get"
	req, err := EncodeCMapGet(key, valueLen)
	if err != nil {
		return nil, 0, 0, &cs.Error{Op: op, Code: cs.ErrInvalidParam, Err: err}
	}
	resp, err := guardedRequest(ctx, ipc, f, service, op, req, CMapResGet)
	if err != nil {
		return nil, 0, 0, err
	}
	v, typ, code, err := DecodeCMapGet(resp)
	if err != nil {
		return nil, 0, 0, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	}
	return v, typ, code, nil
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
