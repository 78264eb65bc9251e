//go:build linux

package native

import (
	"context"
	"errors"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// Service is the libqb service name of corosync's quorum service.
const Service = "quorum"

// Conn is a connection to corosync's quorum service. Requests (Quorate,
// TrackStart, TrackStop) are serialised among themselves and may run
// concurrently with Dispatch; Dispatch must not run concurrently with
// itself. Close may be called at any time.
type Conn struct {
	ipc        *qbipc.Conn
	model      int
	quorumType uint32
}

// Dial connects to the quorum service of the corosync in the calling
// thread's network namespace, trusting it if it runs as root or as one of
// trustedUIDs.
func Dial(ctx context.Context, trustedUIDs []uint32) (*Conn, error) {
	return DialConfig(ctx, qbipc.Config{Service: Service, TrustedUIDs: trustedUIDs})
}

// DialConfig is Dial with every qbipc setting (tests use it to reach a fake
// server). It asks for model V1 and falls back to model V0 on a corosync
// that does not know MODEL_GETTYPE (before 3.1), which answers it with a bare
// CS_ERR_INVALID_PARAM.
func DialConfig(ctx context.Context, cfg qbipc.Config) (*Conn, error) {
	const op = "quorum_model_initialize"
	ipc, err := qbipc.Dial(ctx, cfg)
	if err != nil {
		return nil, relabel(op, err)
	}
	c := &Conn{ipc: ipc, model: modelV1}
	t, code, err := c.uint32Call(ctx, op, EncodeModelGetType(modelV1), ResModelGetType)
	if err == nil && code == cs.ErrInvalidParam {
		c.model = 0
		t, code, err = c.uint32Call(ctx, "quorum_initialize", EncodeGetType(), ResGetType)
	}
	if err == nil && code != cs.OK {
		err = &cs.Error{Op: op, Code: code}
	}
	if err != nil {
		ipc.Close()
		return nil, err
	}
	c.quorumType = t
	return c, nil
}

// Model is the quorum model in use: 1, or 0 on corosync before 3.1.
func (c *Conn) Model() int { return c.model }

// QuorumType is 1 (QUORUM_SET) when a quorum provider is configured, else
// 0 (QUORUM_FREE, where corosync always reports quorate).
func (c *Conn) QuorumType() uint32 { return c.quorumType }

// IPC is the underlying libqb connection.
func (c *Conn) IPC() *qbipc.Conn { return c.ipc }

// Fd is readable when notifications are queued or corosync hung up. It stays
// owned by the Conn.
func (c *Conn) Fd() int { return c.ipc.Fd() }

// Quorate is quorum_getquorate.
func (c *Conn) Quorate(ctx context.Context) (bool, error) {
	const op = "quorum_getquorate"
	v, code, err := c.uint32Call(ctx, op, EncodeGetQuorate(), ResGetQuorate)
	if err != nil {
		return false, err
	}
	if code != cs.OK {
		return false, &cs.Error{Op: op, Code: code}
	}
	return v != 0, nil
}

// TrackStart is quorum_trackstart with CS_TRACK_* flags. With CURRENT or
// CHANGES, corosync queues the snapshot before it answers, also when it
// answers CS_ERR_EXIST to a second call.
func (c *Conn) TrackStart(ctx context.Context, flags uint32) error {
	return c.bareCall(ctx, "quorum_trackstart", EncodeTrackStart(flags), ResTrackStart)
}

// TrackStop is quorum_trackstop.
func (c *Conn) TrackStop(ctx context.Context) error {
	return c.bareCall(ctx, "quorum_trackstop", EncodeTrackStop(), ResTrackStop)
}

// Dispatch decodes every queued notification and passes each to fn, in
// order, without waiting. Once corosync is gone it returns an error with
// code cs.ErrLibrary, after delivering what was queued; the Conn is then
// dead. A malformed or unknown event is an error with the same code.
func (c *Conn) Dispatch(fn func(Notification)) error {
	const op = "quorum_dispatch"
	for {
		msg, ok, err := c.ipc.ReadEvent()
		if err != nil {
			return relabel(op, err)
		}
		if !ok {
			return nil
		}
		ns, err := DecodeNotification(msg)
		if err != nil {
			return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
		}
		for _, n := range ns {
			fn(n)
		}
	}
}

// Close releases the connection without waiting for corosync, and makes a
// request still waiting return.
func (c *Conn) Close() error { return c.ipc.Close() }

func (c *Conn) call(ctx context.Context, op string, req []byte, want int32) ([]byte, error) {
	resp, err := c.ipc.Request(ctx, req, func(h qbipc.ResponseHeader) bool {
		return h.ID == want || isBareError(h)
	})
	if err != nil {
		return nil, relabel(op, err)
	}
	return resp, nil
}

func (c *Conn) uint32Call(ctx context.Context, op string, req []byte, want int32) (uint32, cs.Code, error) {
	resp, err := c.call(ctx, op, req, want)
	if err != nil {
		return 0, 0, err
	}
	v, code, err := DecodeUint32Response(resp, want)
	if err != nil {
		return 0, 0, &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	}
	return v, code, nil
}

func (c *Conn) bareCall(ctx context.Context, op string, req []byte, want int32) error {
	resp, err := c.call(ctx, op, req, want)
	if err != nil {
		return err
	}
	h, err := DecodeResponse(resp, want)
	if err != nil {
		return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
	}
	if cs.Code(h.Error) != cs.OK {
		return &cs.Error{Op: op, Code: cs.Code(h.Error)}
	}
	return nil
}

// relabel names the quorum call in a qbipc error, keeping its code and
// cause; context errors pass through unchanged.
func relabel(op string, err error) error {
	var ce *cs.Error
	if errors.As(err, &ce) {
		return &cs.Error{Op: op, Code: ce.Code, Err: errOrNil(ce)}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
}

// errOrNil keeps the lower operation's name in the cause, so that messages
// say which step failed.
func errOrNil(ce *cs.Error) error {
	if ce.Err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", ce.Op, ce.Err)
}
