//go:build linux

package native

import (
	"context"
	"errors"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
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
	family     Family
	model      int
	quorumType uint32
	v0         model.V0             // with model V0: turns notifications into V1's
	batch      []model.Notification // Dispatch's: what one V0 notification became
}

// Endpoints are the services Dial talks to: corosync's own by default, a
// test's fake servers otherwise.
type Endpoints struct {
	// Quorum is the quorum service ("quorum").
	Quorum qbipc.Config
	// CMap is the cmap service ("cmap"), asked which corosync this is.
	CMap qbipc.Config
}

// Dial connects to the quorum service of the corosync in the calling
// thread's network namespace, trusting it if it runs as root or as one of
// trustedUIDs.
func Dial(ctx context.Context, trustedUIDs []uint32) (*Conn, error) {
	return DialEndpoints(ctx, Endpoints{
		Quorum: qbipc.Config{Service: Service, TrustedUIDs: trustedUIDs},
		CMap:   qbipc.Config{Service: CMapService, TrustedUIDs: trustedUIDs},
	})
}

// DialEndpoints is Dial with every qbipc setting. It first learns the
// server's family (Probe): corosync 2.x gets model V0 and only requests that
// 2.x has; a later corosync is asked for model V1, and one that does not
// know MODEL_GETTYPE (3.0) answers with a bare CS_ERR_INVALID_PARAM and gets
// model V0.
func DialEndpoints(ctx context.Context, e Endpoints) (*Conn, error) {
	f, err := Probe(ctx, e.CMap)
	if err != nil {
		return nil, err
	}
	return DialFamily(ctx, e.Quorum, f)
}

// DialFamily connects to the quorum service at cfg, taking the server to be
// of family f without asking: for tests, which check that nothing a server
// of that family lacks is ever sent.
func DialFamily(ctx context.Context, cfg qbipc.Config, f Family) (*Conn, error) {
	op := "quorum_model_initialize"
	if f == Corosync2 {
		op = "quorum_initialize"
	}
	ipc, err := qbipc.Dial(ctx, cfg)
	if err != nil {
		return nil, relabel(op, err)
	}
	c := &Conn{ipc: ipc, family: f}
	var t uint32
	var code cs.Code
	if f == Corosync2 {
		t, code, err = c.uint32Call(ctx, op, EncodeGetType(), ResGetType)
	} else {
		c.model = modelV1
		t, code, err = c.uint32Call(ctx, op, EncodeModelGetType(modelV1), ResModelGetType)
		if err == nil && code == cs.ErrInvalidParam {
			c.model = 0
			op = "quorum_initialize"
			t, code, err = c.uint32Call(ctx, op, EncodeGetType(), ResGetType)
		}
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

// Family is the server's family, as Dial learnt it.
func (c *Conn) Family() Family { return c.family }

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
	snapshot := c.model == 0 && flags&(trackCurrent|trackChanges) != 0
	if snapshot {
		c.v0.ExpectSnapshot()
	}
	err := c.bareCall(ctx, "quorum_trackstart", EncodeTrackStart(flags), ResTrackStart)
	var ce *cs.Error
	if snapshot && err != nil && !(errors.As(err, &ce) && ce.Code == cs.ErrExist) {
		c.v0.NoSnapshot()
	}
	return err
}

// CS_TRACK_CURRENT and CS_TRACK_CHANGES: either queues a snapshot.
const (
	trackCurrent = 1
	trackChanges = 2
)

// TrackStop is quorum_trackstop.
func (c *Conn) TrackStop(ctx context.Context) error {
	return c.bareCall(ctx, "quorum_trackstop", EncodeTrackStop(), ResTrackStop)
}

// Dispatch decodes every queued notification and passes each to fn, in
// order, without waiting, as model V1 callbacks whatever the model: a V0
// notification becomes a nodelist (Joined and Left nil) and a quorum
// notification, or a quorum notification alone when its ring is the one
// before (see model.V0). Once corosync is gone it returns an error with code
// cs.ErrLibrary, after delivering what was queued; the Conn is then dead. A
// malformed or unknown event is an error with the same code.
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
		n, v0, err := DecodeNotification(msg)
		if err != nil {
			return &cs.Error{Op: op, Code: cs.ErrLibrary, Err: err}
		}
		if !v0 {
			fn(n)
			continue
		}
		c.batch = c.v0.Translate(c.batch[:0], n.Quorate, n.Ring.Seq, n.Members)
		for _, t := range c.batch {
			fn(t)
		}
		clear(c.batch)
	}
}

// Close releases the connection without waiting for corosync, and makes a
// request still waiting return.
func (c *Conn) Close() error { return c.ipc.Close() }

func (c *Conn) call(ctx context.Context, op string, req []byte, want int32) ([]byte, error) {
	return guardedRequest(ctx, c.ipc, c.family, Service, op, req, want)
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
