//go:build linux

package native

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
)

// fakeQuorum plays corosync's quorum service on a qbipctest connection:
// old (before 3.1) answers MODEL_GETTYPE like corosync 3.0 does, with a bare
// CS_ERR_INVALID_PARAM, and sends V0 notifications.
type fakeQuorum struct {
	old      bool
	members  []uint32
	ringSeq  uint64
	quorate  bool
	tracking bool
	// events, if set, replaces the snapshot TRACKSTART sends.
	snapshot [][]byte
}

func reply(id int32, size int, code cs.Code) []byte {
	b := make([]byte, size)
	le.PutUint32(b[0:], uint32(id))
	le.PutUint32(b[8:], uint32(size))
	le.PutUint32(b[16:], uint32(code))
	return b
}

func (f *fakeQuorum) events() [][]byte {
	n := len(f.members)
	q := uint32(0)
	if f.quorate {
		q = 1
	}
	if f.old {
		b := reply(ResNotification, 48+4*n, cs.OK)
		le.PutUint32(b[24:], q)
		le.PutUint64(b[32:], f.ringSeq)
		le.PutUint32(b[40:], uint32(n))
		for i, m := range f.members {
			le.PutUint32(b[44+4*i:], m)
		}
		return [][]byte{b}
	}
	nl := reply(ResV1NodeList, 64+4*n, cs.OK)
	le.PutUint32(nl[24:], f.members[0])
	le.PutUint64(nl[32:], f.ringSeq)
	le.PutUint32(nl[40:], uint32(n))
	for i, m := range f.members {
		le.PutUint32(nl[60+4*i:], m)
	}
	qb := reply(ResV1Quorum, 56+4*n, cs.OK)
	le.PutUint32(qb[24:], q)
	le.PutUint32(qb[32:], f.members[0])
	le.PutUint64(qb[40:], f.ringSeq)
	le.PutUint32(qb[48:], uint32(n))
	for i, m := range f.members {
		le.PutUint32(qb[52+4*i:], m)
	}
	return [][]byte{nl, qb}
}

// handle answers one request; it returns the response, sending any events
// itself first as corosync does.
func (f *fakeQuorum) handle(t *testing.T, sc *qbipctest.Conn, req []byte) []byte {
	id := int32(binary.NativeEndian.Uint32(req))
	switch {
	case id == ReqModelGetType && f.old:
		return reply(0, 24, cs.ErrInvalidParam)
	case id == ReqModelGetType:
		b := reply(ResModelGetType, 32, cs.OK)
		le.PutUint32(b[24:], 1)
		return b
	case id == ReqGetType:
		b := reply(ResGetType, 32, cs.OK)
		le.PutUint32(b[24:], 1)
		return b
	case id == ReqGetQuorate:
		b := reply(ResGetQuorate, 32, cs.OK)
		if f.quorate {
			le.PutUint32(b[24:], 1)
		}
		return b
	case id == ReqTrackStart:
		code := cs.OK
		if f.tracking {
			code = cs.ErrExist
		}
		f.tracking = true
		evs := f.snapshot
		if evs == nil {
			evs = f.events()
		}
		for _, e := range evs {
			if err := sc.SendEvent(e); err != nil {
				t.Error(err)
			}
		}
		return reply(ResTrackStart, 24, code)
	case id == ReqTrackStop:
		f.tracking = false
		return reply(ResTrackStop, 24, cs.OK)
	}
	return reply(0, 24, cs.ErrInvalidParam)
}

func runFake(t *testing.T, f *fakeQuorum, socket bool) *Conn {
	t.Helper()
	s := qbipctest.Start(t, qbipctest.Options{Socket: socket})
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := DialConfig(ctx, qbipc.Config{Service: s.Service, ShmDir: s.Dir})
		ch <- res{c, err}
	}()
	sc := s.Next(t)
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, err := sc.ReadRequest(50 * time.Millisecond)
			if err != nil {
				continue
			}
			if err := sc.Respond(f.handle(t, sc, req)); err != nil {
				t.Error(err)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-stopped })
	r := <-ch
	if r.err != nil {
		t.Fatalf("DialConfig: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

func dispatchAll(t *testing.T, c *Conn, want int) []Notification {
	t.Helper()
	var got []Notification
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		waitReadable(c.Fd(), 100*time.Millisecond)
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func TestFakeModels(t *testing.T) {
	for _, old := range []bool{false, true} {
		for _, socket := range []bool{false, true} {
			f := &fakeQuorum{old: old, members: []uint32{3, 1, 2}, ringSeq: 44, quorate: true}
			c := runFake(t, f, socket)
			wantModel := 1
			if old {
				wantModel = 0
			}
			if c.Model() != wantModel || c.QuorumType() != 1 {
				t.Fatalf("old=%v: model %d type %d", old, c.Model(), c.QuorumType())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if q, err := c.Quorate(ctx); err != nil || !q {
				t.Fatalf("Quorate: %v %v", q, err)
			}
			if err := c.TrackStart(ctx, 3); err != nil {
				t.Fatal(err)
			}
			got := dispatchAll(t, c, 2)
			if len(got) != 2 || got[0].Kind != KindNodeList || got[1].Kind != KindQuorum {
				t.Fatalf("old=%v: %+v", old, got)
			}
			wantRing := RingID{NodeID: 3, Seq: 44} // V1: the fake's first member
			if old {
				wantRing.NodeID = 1 // V0: derived as the lowest member
			}
			for _, n := range got {
				if n.Ring != wantRing || !slices.Equal(n.Members, []uint32{3, 1, 2}) {
					t.Fatalf("old=%v: %+v", old, n)
				}
			}
			if got[0].Joined != nil && old || got[0].Left != nil && old || !got[1].Quorate {
				t.Fatalf("old=%v: %+v", old, got)
			}
			if err := c.TrackStart(ctx, 3); code(err) != cs.ErrExist {
				t.Fatalf("second TrackStart: %v", err)
			}
			if err := c.TrackStop(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFakeBadEvents(t *testing.T) {
	for _, ev := range [][]byte{
		reply(42, 24, cs.OK),            // unknown id
		reply(ResV1Quorum, 40, cs.OK),   // too short
		reply(ResV1NodeList, 60, cs.OK), // fine, then:
	} {
		if len(ev) == 60 {
			le.PutUint32(ev[40:], 1000) // members beyond the message
		}
		f := &fakeQuorum{members: []uint32{1}, ringSeq: 4, quorate: true, snapshot: [][]byte{ev}}
		c := runFake(t, f, false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.TrackStart(ctx, 1); err != nil {
			t.Fatal(err)
		}
		var derr error
		for i := 0; i < 50 && derr == nil; i++ {
			waitReadable(c.Fd(), 100*time.Millisecond)
			derr = c.Dispatch(func(n Notification) { t.Errorf("delivered %+v", n) })
		}
		var ce *cs.Error
		if !errors.As(derr, &ce) || ce.Code != cs.ErrLibrary || ce.Op != "quorum_dispatch" {
			t.Fatalf("event %x: %v", ev, derr)
		}
	}
}
