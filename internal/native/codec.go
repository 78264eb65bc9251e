//go:build linux

// Package native speaks corosync's quorum service over the pure-Go libqb
// IPC client in internal/qbipc: the message codec of ipc_quorum.h and a
// connection with libquorum's semantics, model V1 when corosync has it
// (3.1 and later) and model V0 translated to V1's shape otherwise.
package native

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// Request ids (enum req_quorum_types).
const (
	ReqGetQuorate   = 0
	ReqTrackStart   = 1
	ReqTrackStop    = 2
	ReqGetType      = 3
	ReqModelGetType = 4
)

// Response and event ids (enum res_quorum_types).
const (
	ResGetQuorate   = 0
	ResTrackStart   = 1
	ResTrackStop    = 2
	ResNotification = 3
	ResGetType      = 4
	ResModelGetType = 5
	ResV1Quorum     = 6
	ResV1NodeList   = 7
	modelV1         = 1
)

// The decoded notification is model's, which both real backends share.
type (
	Kind         = model.Kind
	RingID       = model.RingID
	Notification = model.Notification
)

const (
	KindNodeList = model.KindNodeList
	KindQuorum   = model.KindQuorum
)

var errMalformed = errors.New("malformed quorum message")

const hdr = qbipc.ResponseHeaderSize

var le = binary.NativeEndian

func request(id int32, size int) []byte {
	b := make([]byte, size)
	qbipc.PutRequestHeader(b, qbipc.RequestHeader{ID: id, Size: int32(size)})
	return b
}

// EncodeGetQuorate is the GETQUORATE request.
func EncodeGetQuorate() []byte { return request(ReqGetQuorate, qbipc.RequestHeaderSize) }

// EncodeGetType is the model-V0 GETTYPE request.
func EncodeGetType() []byte { return request(ReqGetType, qbipc.RequestHeaderSize) }

// EncodeTrackStop is the TRACKSTOP request.
func EncodeTrackStop() []byte { return request(ReqTrackStop, qbipc.RequestHeaderSize) }

// EncodeModelGetType is MODEL_GETTYPE, which also sets the connection's model.
func EncodeModelGetType(model uint32) []byte {
	b := request(ReqModelGetType, 24)
	le.PutUint32(b[16:], model)
	return b
}

// EncodeTrackStart is TRACKSTART with corosync's CS_TRACK_* flags.
func EncodeTrackStart(flags uint32) []byte {
	b := request(ReqTrackStart, 24)
	le.PutUint32(b[16:], flags)
	return b
}

// DecodeResponse checks a response's header and returns its status. A
// status other than CS_OK is returned as the code with a nil error; err is
// for malformed messages only. want is the expected id; bare error replies
// (id 0, header only) that corosync sends for refused requests are
// accepted too.
func DecodeResponse(b []byte, want int32) (qbipc.ResponseHeader, error) {
	h, err := qbipc.ParseResponseHeader(b)
	if err != nil {
		return h, err
	}
	if h.ID != want && !isBareError(h) {
		return h, fmt.Errorf("%w: response id %d, want %d", errMalformed, h.ID, want)
	}
	return h, nil
}

// isBareError is corosync's reply to a request it refuses before reaching
// the service (unknown id, or sending not allowed): id 0 and only a header.
func isBareError(h qbipc.ResponseHeader) bool {
	return h.ID == 0 && h.Size == hdr && h.Error != int32(cs.OK)
}

// DecodeUint32Response decodes GETQUORATE, GETTYPE and MODEL_GETTYPE
// responses: a header and one uint32 at offset 24. code is the status; the
// value is only meaningful when code is CS_OK.
func DecodeUint32Response(b []byte, want int32) (v uint32, code cs.Code, err error) {
	h, err := DecodeResponse(b, want)
	if err != nil {
		return 0, 0, err
	}
	if cs.Code(h.Error) != cs.OK {
		return 0, cs.Code(h.Error), nil
	}
	if len(b) < hdr+4 {
		return 0, 0, fmt.Errorf("%w: response id %d of %d bytes has no value", errMalformed, h.ID, len(b))
	}
	return le.Uint32(b[hdr:]), cs.OK, nil
}

// uint32s reads n uint32s at off, checking they lie within b.
func uint32s(b []byte, off int, n uint32) ([]uint32, error) {
	end := uint64(off) + 4*uint64(n)
	if end > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d entries at offset %d overrun a %d-byte message", errMalformed, n, off, len(b))
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = le.Uint32(b[off+4*i:])
	}
	return out, nil
}

func need(b []byte, n int, what string) error {
	if len(b) < n {
		return fmt.Errorf("%w: %s of %d bytes, want at least %d", errMalformed, what, len(b), n)
	}
	return nil
}

// DecodeNotification decodes an event: a V1 quorum or nodelist
// notification, or (v0 set) a V0 notification as a quorum notification whose
// ring carries no node id, for model.V0 to translate. An unknown id is an
// error, as in libquorum.
func DecodeNotification(b []byte) (n Notification, v0 bool, err error) {
	h, err := qbipc.ParseResponseHeader(b)
	if err != nil {
		return n, false, err
	}
	switch h.ID {
	case ResV1Quorum:
		// quorate i32 @24, ring_id {nodeid u32 @32, seq u64 @40},
		// view_list_entries u32 @48, view_list @52.
		if err := need(b, 52, "quorum notification"); err != nil {
			return n, false, err
		}
		m, err := uint32s(b, 52, le.Uint32(b[48:]))
		if err != nil {
			return n, false, err
		}
		return Notification{Kind: KindQuorum, Quorate: le.Uint32(b[24:]) != 0,
			Ring: RingID{NodeID: le.Uint32(b[32:]), Seq: le.Uint64(b[40:])}, Members: m}, false, nil
	case ResV1NodeList:
		// ring_id {nodeid @24, seq @32}, member_entries @40,
		// joined_entries @48, left_entries @56, arrays from @60.
		if err := need(b, 60, "nodelist notification"); err != nil {
			return n, false, err
		}
		nm, nj, nl := le.Uint32(b[40:]), le.Uint32(b[48:]), le.Uint32(b[56:])
		total := uint64(nm) + uint64(nj) + uint64(nl)
		if 60+4*total > uint64(len(b)) {
			return n, false, fmt.Errorf("%w: nodelist notification of %d bytes claims %d+%d+%d entries", errMalformed, len(b), nm, nj, nl)
		}
		m, _ := uint32s(b, 60, nm)
		j, _ := uint32s(b, 60+4*int(nm), nj)
		l, _ := uint32s(b, 60+4*int(nm+nj), nl)
		return Notification{Kind: KindNodeList, Ring: RingID{NodeID: le.Uint32(b[24:]), Seq: le.Uint64(b[32:])},
			Members: m, Joined: j, Left: l}, false, nil
	case ResNotification:
		// quorate i32 @24, ring_seq u64 @32, view_list_entries @40,
		// view_list @44.
		if err := need(b, 44, "v0 notification"); err != nil {
			return n, false, err
		}
		m, err := uint32s(b, 44, le.Uint32(b[40:]))
		if err != nil {
			return n, false, err
		}
		return Notification{Kind: KindQuorum, Quorate: le.Uint32(b[24:]) != 0, Ring: RingID{Seq: le.Uint64(b[32:])}, Members: m}, true, nil
	}
	return n, false, fmt.Errorf("%w: unknown event id %d", errMalformed, h.ID)
}
