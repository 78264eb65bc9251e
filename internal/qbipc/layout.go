//go:build linux

package qbipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// libqb message ids below zero are its own control messages.
const msgAuthenticate = -1

// Sizes of libqb's wire headers on 64-bit Linux. Every int32 field in them is
// declared aligned(8), so each takes 8 bytes.
const (
	// RequestHeaderSize is sizeof(struct qb_ipc_request_header).
	RequestHeaderSize = 16
	// ResponseHeaderSize is sizeof(struct qb_ipc_response_header).
	ResponseHeaderSize = 24

	connRequestSize  = 24
	connResponseSize = 12328
	pathMax          = 4096
)

// DefaultMaxMsgSize is what libquorum asks for (IPC_REQUEST_SIZE, 1 MiB).
const DefaultMaxMsgSize = 8192 * 128

// maxAcceptedMsgSize bounds the message size a server may impose on us, so
// that a hostile handshake cannot make the client allocate without limit.
const maxAcceptedMsgSize = 16 << 20

// Transport is the connection type the server chose in the handshake.
type Transport int32

const (
	// TransportSocket is QB_IPC_SOCKET: unix datagram sockets.
	TransportSocket Transport = 0
	// TransportSHM is QB_IPC_SHM: shared-memory rings.
	TransportSHM Transport = 1
)

func (t Transport) String() string {
	switch t {
	case TransportSocket:
		return "socket"
	case TransportSHM:
		return "shm"
	}
	return fmt.Sprintf("transport(%d)", int32(t))
}

// connResponse is the decoded qb_ipc_connection_response.
type connResponse struct {
	ID         int32
	Size       int32
	Error      int32
	Type       Transport
	MaxMsgSize uint32
	Request    string
	Response   string
	Event      string
}

func encodeConnRequest(maxMsgSize uint32) []byte {
	b := make([]byte, connRequestSize)
	id := int32(msgAuthenticate)
	binary.NativeEndian.PutUint32(b[0:], uint32(id))
	binary.NativeEndian.PutUint32(b[8:], connRequestSize)
	binary.NativeEndian.PutUint32(b[16:], maxMsgSize)
	return b
}

// errMalformed is the cause of every error about data from the server that
// breaks the protocol's rules.
var errMalformed = errors.New("malformed message from server")

// parseConnResponse decodes a connection response. It checks the fixed
// fields only as far as needed to use the rest safely; the caller decides
// what hdr.error means. The layout after max_msg_size depends on the width
// of intptr_t on the server, which matches ours on the same machine.
func parseConnResponse(b []byte) (connResponse, error) {
	var r connResponse
	if len(b) != connResponseSize {
		return r, fmt.Errorf("%w: connection response of %d bytes, want %d", errMalformed, len(b), connResponseSize)
	}
	le := binary.NativeEndian
	r.ID = int32(le.Uint32(b[0:]))
	r.Size = int32(le.Uint32(b[8:]))
	r.Error = int32(le.Uint32(b[16:]))
	if r.ID != msgAuthenticate {
		return r, fmt.Errorf("%w: connection response id %d, want %d", errMalformed, r.ID, msgAuthenticate)
	}
	if r.Error != 0 {
		// The rest is not meaningful on a refusal.
		return r, nil
	}
	if r.Size != connResponseSize {
		return r, fmt.Errorf("%w: connection response size field %d, want %d", errMalformed, r.Size, connResponseSize)
	}
	r.Type = Transport(int32(le.Uint32(b[24:])))
	r.MaxMsgSize = le.Uint32(b[28:])
	strs := 32 + int(unsafe.Sizeof(uintptr(0)))
	var err error
	if r.Request, err = cString(b[strs : strs+pathMax]); err != nil {
		return r, fmt.Errorf("request name: %w", err)
	}
	if r.Response, err = cString(b[strs+pathMax : strs+2*pathMax]); err != nil {
		return r, fmt.Errorf("response name: %w", err)
	}
	if r.Event, err = cString(b[strs+2*pathMax : strs+3*pathMax]); err != nil {
		return r, fmt.Errorf("event name: %w", err)
	}
	return r, nil
}

// cString returns the NUL-terminated string at the start of b, refusing one
// that fills b without a terminator.
func cString(b []byte) (string, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), nil
		}
	}
	return "", fmt.Errorf("%w: string of %d bytes is not NUL-terminated", errMalformed, len(b))
}

// RequestHeader is the decoded qb_ipc_request_header.
type RequestHeader struct {
	ID   int32
	Size int32
}

// ResponseHeader is the decoded qb_ipc_response_header. Error is the
// service's status code (for corosync a cs_error_t).
type ResponseHeader struct {
	ID    int32
	Size  int32
	Error int32
}

// PutRequestHeader writes h into the first RequestHeaderSize bytes of b,
// leaving the alignment padding zero.
func PutRequestHeader(b []byte, h RequestHeader) {
	_ = b[RequestHeaderSize-1]
	binary.NativeEndian.PutUint32(b[0:], uint32(h.ID))
	binary.NativeEndian.PutUint32(b[4:], 0)
	binary.NativeEndian.PutUint32(b[8:], uint32(h.Size))
	binary.NativeEndian.PutUint32(b[12:], 0)
}

// ParseResponseHeader decodes the header at the start of a response or event.
// It fails if b is shorter than a header or if the size field disagrees with
// len(b); padding bytes are not checked because corosync leaves them unset.
func ParseResponseHeader(b []byte) (ResponseHeader, error) {
	var h ResponseHeader
	if len(b) < ResponseHeaderSize {
		return h, fmt.Errorf("%w: message of %d bytes is shorter than a response header", errMalformed, len(b))
	}
	le := binary.NativeEndian
	h.ID = int32(le.Uint32(b[0:]))
	h.Size = int32(le.Uint32(b[8:]))
	h.Error = int32(le.Uint32(b[16:]))
	if h.Size < ResponseHeaderSize || int64(h.Size) != int64(len(b)) {
		return h, fmt.Errorf("%w: header size %d for a message of %d bytes", errMalformed, h.Size, len(b))
	}
	return h, nil
}
