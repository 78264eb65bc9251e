//go:build linux

package native

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
)

// fakeQuorum plays corosync's quorum service on a qbipctest connection, as
// the version says: "3.1" (model V1), "3.0" (answers MODEL_GETTYPE with a
// bare CS_ERR_INVALID_PARAM, as corosync 3.0 does, and sends V0
// notifications) or "2.4" (V0, and a fake server that fails the test on any
// request id 2.x does not have, since the real one dies of it).
type fakeQuorum struct {
	version  string
	members  []uint32
	ringSeq  uint64
	quorate  bool
	tracking bool
	// events, if set, replaces the snapshot TRACKSTART sends.
	snapshot [][]byte
	// conn is the server side of the quorum connection, once dialled.
	conn *qbipctest.Conn
}

func (f *fakeQuorum) v0() bool { return f.version != "3.1" }

// options are the fake servers' settings for f's version: corosync 2.x
// servers refuse unknown request ids loudly, and the older ones use libqb
// 1.0.x's flat file names (RHEL 7 and 8 had libqb 1.0.1 and 1.0.3).
func (f *fakeQuorum) options(socket bool, ids int32) qbipctest.Options {
	o := qbipctest.Options{Socket: socket, FlatNames: f.version != "3.1"}
	if f.version == "2.4" {
		o.RequestIDs = ids
	}
	return o
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
	if f.v0() {
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
	case id == ReqModelGetType && f.v0():
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

// serveFake answers every request on sc with handle until the test ends.
func serveFake(t *testing.T, sc *qbipctest.Conn, handle func(req []byte) []byte) {
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
			if err := sc.Respond(handle(req)); err != nil {
				t.Error(err)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-stopped })
}

// fakeCMap answers cmap GETs as corosync of f's version does for the key
// Probe asks for.
func fakeCMap(f *fakeQuorum) func(req []byte) []byte {
	return func(req []byte) []byte {
		if id := int32(le.Uint32(req)); id != CMapReqGet {
			return reply(0, 24, cs.ErrInvalidParam)
		}
		key := string(req[24 : 24+le.Uint16(req[16:])])
		if key != generationKey || f.version != "2.4" {
			return reply(CMapResGet, 40, cs.ErrNotExist)
		}
		b := reply(CMapResGet, 40, cs.OK)
		le.PutUint64(b[24:], 8)
		b[32] = 8 // CMAP_VALUETYPE_UINT64; no value was asked for
		return b
	}
}

// runFake starts fake cmap and quorum services of f's version and dials them
// as Dial dials corosync's: the probe first, then the quorum service.
func runFake(t *testing.T, f *fakeQuorum, socket bool) *Conn {
	t.Helper()
	cm := qbipctest.Start(t, f.options(socket, CMapReqTrackDelete+1))
	qs := qbipctest.Start(t, f.options(socket, ReqGetType+1))
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := DialEndpoints(ctx, Endpoints{
			Quorum: qbipc.Config{Service: qs.Service, ShmDir: qs.Dir},
			CMap:   qbipc.Config{Service: cm.Service, ShmDir: cm.Dir},
		})
		ch <- res{c, err}
	}()
	serveFake(t, cm.Next(t), fakeCMap(f))
	sc := qs.Next(t)
	f.conn = sc
	serveFake(t, sc, func(req []byte) []byte { return f.handle(t, sc, req) })
	r := <-ch
	if r.err != nil {
		t.Fatalf("DialEndpoints: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

func dispatchAll(t *testing.T, c *Conn, want int) []Notification {
	t.Helper()
	var got []Notification
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		_ = qbipctest.WaitReadable(c.Fd(), 100*time.Millisecond)
		if err := c.Dispatch(func(n Notification) { got = append(got, n) }); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

var fakeVersions = []string{"3.1", "3.0", "2.4"}

func TestFakeModels(t *testing.T) {
	for _, version := range fakeVersions {
		for _, socket := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/socket=%v", version, socket), func(t *testing.T) {
				f := &fakeQuorum{version: version, members: []uint32{3, 1, 2}, ringSeq: 44, quorate: true}
				c := runFake(t, f, socket)
				wantModel, wantFamily := 1, Corosync3
				if f.v0() {
					wantModel = 0
				}
				if version == "2.4" {
					wantFamily = Corosync2
				}
				if c.Model() != wantModel || c.QuorumType() != 1 || c.Family() != wantFamily {
					t.Fatalf("model %d type %d family %v", c.Model(), c.QuorumType(), c.Family())
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
					t.Fatalf("%+v", got)
				}
				wantRing := RingID{NodeID: 3, Seq: 44} // V1: the fake's first member
				if f.v0() {
					wantRing.NodeID = 1 // V0: derived as the lowest member
				}
				for _, n := range got {
					if n.Ring != wantRing || !slices.Equal(n.Members, []uint32{3, 1, 2}) {
						t.Fatalf("%+v", n)
					}
				}
				if got[0].Joined != nil && f.v0() || got[0].Left != nil && f.v0() || !got[1].Quorate {
					t.Fatalf("%+v", got)
				}
				// A second trackstart sends the snapshot again: nodelist and
				// quorum, although V0 gives it on the same ring.
				if err := c.TrackStart(ctx, 3); code(err) != cs.ErrExist {
					t.Fatalf("second TrackStart: %v", err)
				}
				if again := dispatchAll(t, c, 2); len(again) != 2 || again[0].Kind != KindNodeList {
					t.Fatalf("second snapshot %+v", again)
				}
				if err := c.TrackStop(ctx); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestFakeV0Translation: model V0 notifications come out as V1 would give
// them: a new ring as nodelist and quorum, a quorum change on the same ring
// as quorum alone.
func TestFakeV0Translation(t *testing.T) {
	for _, version := range []string{"3.0", "2.4"} {
		t.Run(version, func(t *testing.T) {
			f := &fakeQuorum{version: version, members: []uint32{1, 2, 3}, ringSeq: 8, quorate: true}
			c := runFake(t, f, false)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.TrackStart(ctx, 3); err != nil {
				t.Fatal(err)
			}
			if got := dispatchAll(t, c, 2); len(got) != 2 {
				t.Fatalf("snapshot %+v", got)
			}
			// Later events are built from a copy: the fake's own fields
			// are read by its server goroutine.
			next := &fakeQuorum{version: version, members: f.members, ringSeq: f.ringSeq}
			send := func() {
				t.Helper()
				for _, e := range next.events() {
					if err := f.conn.SendEvent(e); err != nil {
						t.Fatal(err)
					}
				}
			}
			next.quorate = false // expected votes raised: same ring, inquorate
			send()
			got := dispatchAll(t, c, 1)
			if len(got) != 1 || got[0].Kind != KindQuorum || got[0].Quorate || got[0].Ring != (RingID{NodeID: 1, Seq: 8}) {
				t.Fatalf("quorum change on the same ring: %+v", got)
			}
			next.members, next.ringSeq, next.quorate = []uint32{2, 3}, 12, true
			send()
			got = dispatchAll(t, c, 2)
			if len(got) != 2 || got[0].Kind != KindNodeList || got[1].Kind != KindQuorum ||
				got[0].Ring != (RingID{NodeID: 2, Seq: 12}) || !slices.Equal(got[0].Members, []uint32{2, 3}) {
				t.Fatalf("new ring: %+v", got)
			}
		})
	}
}

// TestGuard: a request that corosync 2.x does not have is refused before it
// is sent (the fake 2.x server would fail the test if it arrived).
func TestGuard(t *testing.T) {
	for _, tc := range []struct {
		f       Family
		service string
		id      int32
		ok      bool
	}{
		{Corosync2, Service, ReqGetQuorate, true},
		{Corosync2, Service, ReqGetType, true},
		{Corosync2, Service, ReqModelGetType, false},
		{Corosync2, Service, -1, false},
		{Corosync2, CMapService, CMapReqGet, true},
		{Corosync2, CMapService, CMapReqTrackDelete + 1, false},
		{Corosync2, CMapService, CMapReqIterInit, true},
		{Corosync2, CMapService, CMapReqTrackAdd, true},
		{Corosync2, VoteService, VoteReqGetInfo, true},
		{Corosync2, VoteService, VoteReqTrackStop, true},
		{Corosync2, VoteService, voteReqCount - 1, true}, // QDEVICE_MASTER_WINS, never sent
		{Corosync2, VoteService, voteReqCount, false},    // main's QDEVICE_SET_EXTRA_INFO
		{Corosync2, "cfg", 0, false},                     // no table: nothing goes
		{Corosync3, VoteService, voteReqCount, true},
		{Corosync3, Service, ReqModelGetType, true},
	} {
		if got := mayRequest(tc.f, tc.service, tc.id); got != tc.ok {
			t.Errorf("mayRequest(%v, %s, %d) = %v", tc.f, tc.service, tc.id, got)
		}
	}
	f := &fakeQuorum{version: "2.4", members: []uint32{1}, ringSeq: 4, quorate: true}
	c := runFake(t, f, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.uint32Call(ctx, "quorum_model_initialize", EncodeModelGetType(1), ResModelGetType)
	if code(err) != cs.ErrNotSupported {
		t.Fatalf("MODEL_GETTYPE to 2.x: %v, want CS_ERR_NOT_SUPPORTED before sending", err)
	}
	if q, err := c.Quorate(ctx); err != nil || !q {
		t.Fatalf("Quorate after the refused request: %v %v", q, err)
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
		f := &fakeQuorum{version: "3.1", members: []uint32{1}, ringSeq: 4, quorate: true, snapshot: [][]byte{ev}}
		c := runFake(t, f, false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.TrackStart(ctx, 1); err != nil {
			t.Fatal(err)
		}
		var derr error
		for i := 0; i < 50 && derr == nil; i++ {
			_ = qbipctest.WaitReadable(c.Fd(), 100*time.Millisecond)
			derr = c.Dispatch(func(n Notification) { t.Errorf("delivered %+v", n) })
		}
		var ce *cs.Error
		if !errors.As(derr, &ce) || ce.Code != cs.ErrLibrary || ce.Op != "quorum_dispatch" {
			t.Fatalf("event %x: %v", ev, derr)
		}
	}
}
