//go:build linux

package native

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
)

// Messages as corosync builds them (ipc_votequorum.h, ipc_cmap.h), for the
// fake servers and the fuzz seeds.

func voteQuorumMsg(quorate bool, nodes ...model.VoteNode) []byte {
	b := reply(VoteResQuorum, 48+8*len(nodes), cs.OK)
	if quorate {
		le.PutUint32(b[24:], 1)
	}
	le.PutUint64(b[32:], voteTrackContext)
	le.PutUint32(b[40:], uint32(len(nodes)))
	for i, n := range nodes {
		le.PutUint32(b[48+8*i:], n.ID)
		le.PutUint32(b[52+8*i:], n.State)
	}
	return b
}

func voteNodeListMsg(ring model.RingID, members ...uint32) []byte {
	b := reply(VoteResNodeList, 56+4*len(members), cs.OK)
	le.PutUint32(b[32:], ring.NodeID)
	le.PutUint64(b[40:], ring.Seq)
	le.PutUint32(b[48:], uint32(len(members)))
	for i, m := range members {
		le.PutUint32(b[56+4*i:], m)
	}
	return b
}

func voteExpectedMsg(expected uint32) []byte {
	b := reply(VoteResExpectedVotes, 40, cs.OK)
	le.PutUint32(b[32:], expected)
	return b
}

// voteExtraInfoMsg is corosync main's qdevice extra information (id 7),
// which this package skips: context @24, node id @32, size @40, data @48.
func voteExtraInfoMsg(nodeID uint32, info string) []byte {
	b := reply(7, 48+len(info), cs.OK)
	le.PutUint32(b[32:], nodeID)
	le.PutUint32(b[40:], uint32(len(info)))
	copy(b[48:], info)
	return b
}

func voteInfoMsg(i model.VoteInfo) []byte {
	b := reply(VoteResGetInfo, 320, cs.OK)
	for k, v := range []uint32{i.NodeID, i.State, i.Votes, i.Expected, i.HighestExpected, i.TotalVotes, i.Quorum, i.Flags, i.QdeviceVotes} {
		le.PutUint32(b[24+4*k:], v)
	}
	copy(b[60:60+254], i.QdeviceName)
	return b
}

func cmapNotifyMsg(cookie uint64, key string, event int32, newType uint8, newV []byte, oldType uint8, oldV []byte) []byte {
	b := reply(CMapResNotify, 336+len(newV)+len(oldV), cs.OK)
	le.PutUint64(b[24:], cookie)
	le.PutUint16(b[32:], uint16(len(key)))
	copy(b[40:], key)
	le.PutUint32(b[296:], uint32(event))
	b[304], b[312] = newType, oldType
	le.PutUint64(b[320:], uint64(len(newV)))
	le.PutUint64(b[328:], uint64(len(oldV)))
	copy(b[336:], newV)
	copy(b[336+len(newV):], oldV)
	return b
}

func u32Value(v uint32) fakeValue {
	b := make([]byte, 4)
	le.PutUint32(b, v)
	return fakeValue{CMapTypeUint32, b}
}

func strValue(s string) fakeValue { return fakeValue{CMapTypeString, append([]byte(s), 0)} }

type fakeValue struct {
	typ uint8
	v   []byte
}

type fakeTrack struct {
	key    string
	typ    int32
	cookie uint64
}

// fakeVotes plays corosync's cmap and votequorum services of a version
// ("3.1", "3.0" or "2.4"; the 2.4 servers fail the test on any request id
// 2.x does not have). Its fields are guarded by mu: the servers' goroutines
// read and change them.
type fakeVotes struct {
	version string
	t       *testing.T

	mu        sync.Mutex
	keys      map[string]fakeValue
	local     uint32
	info      map[uint32]model.VoteInfo
	snapshot  [][]byte // TRACKSTART's, queued before its reply
	tracking  bool
	expected  []uint32 // SETEXPECTED values accepted
	votes     [][2]uint32
	tracks    []fakeTrack
	iters     map[uint64][]string // open iterators and their keys left
	nextIter  uint64
	finalized []uint64
	// hold, if set, is called before a cmap request of that id is
	// answered (it may block until the test lets it go).
	hold map[int32]func()

	cm, vq *qbipctest.Conn
}

func newFakeVotes(t *testing.T, version string) *fakeVotes {
	return &fakeVotes{version: version, t: t, keys: map[string]fakeValue{}, info: map[uint32]model.VoteInfo{},
		iters: map[uint64][]string{}, nextIter: 0x5eed_0000_0001, hold: map[int32]func(){}}
}

func (f *fakeVotes) family() Family {
	if f.version == "2.4" {
		return Corosync2
	}
	return Corosync3
}

func (f *fakeVotes) options(socket bool, ids int32) qbipctest.Options {
	o := qbipctest.Options{Socket: socket, FlatNames: f.version != "3.1"}
	if f.version == "2.4" {
		o.RequestIDs = ids
	}
	return o
}

func cmapKey(req []byte, off int) string {
	return string(req[off+8 : off+8+int(le.Uint16(req[off:]))])
}

func (f *fakeVotes) handleCMap(req []byte) []byte {
	id := int32(le.Uint32(req))
	f.mu.Lock()
	hold := f.hold[id]
	f.mu.Unlock()
	if hold != nil {
		hold()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch id {
	case CMapReqGet:
		key, asked := cmapKey(req, 16), le.Uint64(req[280:])
		v, ok := f.keys[key]
		switch {
		case !ok:
			return reply(CMapResGet, 40, cs.ErrNotExist)
		case asked > 0 && asked < uint64(len(v.v)):
			return reply(CMapResGet, 40, cs.ErrInvalidParam)
		}
		b := reply(CMapResGet, 40+int(asked), cs.OK)
		le.PutUint64(b[24:], uint64(len(v.v)))
		b[32] = v.typ
		if asked > 0 {
			copy(b[40:], v.v)
		}
		return b
	case CMapReqIterInit:
		prefix := cmapKey(req, 16)
		var keys []string
		for k := range f.keys {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		h := f.nextIter
		f.nextIter++
		f.iters[h] = keys
		b := reply(CMapResIterInit, 32, cs.OK)
		le.PutUint64(b[24:], h)
		return b
	case CMapReqIterNext:
		h := le.Uint64(req[16:])
		keys, ok := f.iters[h]
		switch {
		case !ok:
			return reply(CMapResIterNext, 304, cs.ErrBadHandle)
		case len(keys) == 0:
			return reply(CMapResIterNext, 304, cs.ErrNoSections)
		}
		f.iters[h] = keys[1:]
		v := f.keys[keys[0]]
		b := reply(CMapResIterNext, 304, cs.OK)
		le.PutUint16(b[24:], uint16(len(keys[0])))
		copy(b[32:], keys[0])
		le.PutUint64(b[288:], uint64(len(v.v)))
		b[296] = v.typ
		return b
	case CMapReqIterFinalize:
		h := le.Uint64(req[16:])
		if _, ok := f.iters[h]; !ok {
			return reply(CMapResIterFinalize, 24, cs.ErrBadHandle)
		}
		delete(f.iters, h)
		f.finalized = append(f.finalized, h)
		return reply(CMapResIterFinalize, 24, cs.OK)
	case CMapReqTrackAdd:
		f.tracks = append(f.tracks, fakeTrack{cmapKey(req, 16), int32(le.Uint32(req[280:])), le.Uint64(req[288:])})
		b := reply(CMapResTrackAdd, 32, cs.OK)
		le.PutUint64(b[24:], uint64(len(f.tracks)))
		return b
	}
	return reply(0, 24, cs.ErrInvalidParam)
}

func (f *fakeVotes) handleVote(sc *qbipctest.Conn, req []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch id := int32(le.Uint32(req)); id {
	case VoteReqGetInfo:
		n := le.Uint32(req[16:])
		if n == 0 {
			n = f.local
		}
		i, ok := f.info[n]
		if !ok {
			// corosync sends the whole reply, its fields unset.
			b := reply(VoteResGetInfo, 320, cs.ErrNotExist)
			le.PutUint32(b[24:], 0xdeadbeef)
			return b
		}
		return voteInfoMsg(i)
	case VoteReqSetExpected:
		e := le.Uint32(req[16:])
		total := uint32(0)
		for _, i := range f.info {
			total += i.Votes
		}
		if e < total {
			return reply(VoteResStatus, 24, cs.ErrInvalidParam)
		}
		f.expected = append(f.expected, e)
		return reply(VoteResStatus, 24, cs.OK)
	case VoteReqSetVotes:
		v, n := le.Uint32(req[16:]), le.Uint32(req[20:])
		if _, ok := f.info[n]; !ok {
			return reply(VoteResStatus, 24, cs.ErrNameNotFound)
		}
		f.votes = append(f.votes, [2]uint32{n, v})
		return reply(VoteResStatus, 24, cs.OK)
	case VoteReqTrackStart:
		if ctx, flags := le.Uint64(req[16:]), le.Uint32(req[24:]); ctx != voteTrackContext || flags != trackChanges {
			f.t.Errorf("votequorum TRACKSTART context %d flags %d", ctx, flags)
		}
		for _, e := range f.snapshot {
			if err := sc.SendEvent(e); err != nil {
				f.t.Error(err)
			}
		}
		code := cs.OK
		if f.tracking {
			code = cs.ErrExist
		}
		f.tracking = true
		return reply(VoteResStatus, 24, code)
	case VoteReqTrackStop:
		code := cs.OK
		if !f.tracking {
			code = cs.ErrNotExist
		}
		f.tracking = false
		return reply(VoteResStatus, 24, code)
	}
	return reply(0, 24, cs.ErrInvalidParam)
}

// runFakeVotes starts the fake cmap and, if withVQ, votequorum services and
// dials them as DialVotes dials corosync's. Without votequorum, the dial is
// pointed at a service nobody serves, so that trying it fails the test.
func runFakeVotes(t *testing.T, f *fakeVotes, socket, withVQ bool) *VoteConn {
	t.Helper()
	cm := qbipctest.Start(t, f.options(socket, CMapReqTrackDelete+1))
	vqCfg := qbipc.Config{Service: "qbipctest-no-votequorum-here"}
	var vs *qbipctest.Server
	if withVQ {
		vs = qbipctest.Start(t, f.options(socket, voteReqCount))
		vqCfg = qbipc.Config{Service: vs.Service, ShmDir: vs.Dir}
	}
	type res struct {
		c   *VoteConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := DialVotesEndpoints(ctx, VoteEndpoints{
			CMap:       qbipc.Config{Service: cm.Service, ShmDir: cm.Dir},
			Votequorum: vqCfg,
		}, f.family())
		ch <- res{c, err}
	}()
	f.cm = cm.Next(t)
	serveFake(t, f.cm, f.handleCMap)
	if withVQ {
		f.vq = vs.Next(t)
		serveFake(t, f.vq, func(req []byte) []byte { return f.handleVote(f.vq, req) })
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("DialVotesEndpoints: %v", r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// dispatchVotes dispatches until want events arrived or 5 s passed.
func dispatchVotes(t *testing.T, c *VoteConn, want int) []model.VoteEvent {
	t.Helper()
	var got []model.VoteEvent
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		waitAny(c.Fds(), 100*time.Millisecond)
		if err := c.Dispatch(func(e model.VoteEvent) { got = append(got, e) }); err != nil {
			t.Fatalf("Dispatch: %v", err)
		}
	}
	return got
}

// waitAny waits up to d for one of fds to be readable.
func waitAny(fds []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, fd := range fds {
			if qbipctest.WaitReadable(fd, 0) == nil {
				return
			}
		}
		_ = qbipctest.WaitReadable(fds[0], 10*time.Millisecond)
	}
}

func csErr(t *testing.T, err error, op string, code cs.Code) *cs.Error {
	t.Helper()
	var ce *cs.Error
	if !errors.As(err, &ce) || ce.Op != op || ce.Code != code {
		t.Fatalf("error %v, want %s: %v", err, op, code)
	}
	return ce
}

// nodelistKeys is a nodelist as corosync keeps it in cmap: positions in
// the order of the config, typed values, and entries that corosync's tools
// leave out (a nodeid that is not a UINT32, or none).
func nodelistKeys(f *fakeVotes) {
	set := func(k string, v fakeValue) { f.keys[k] = v }
	set("quorum.provider", strValue(ProviderVotequorum))
	set("nodelist.local_node_pos", u32Value(0))
	set("nodelist.node.0.nodeid", u32Value(3))
	set("nodelist.node.0.name", strValue("gamma"))
	set("nodelist.node.0.ring0_addr", strValue("10.0.0.3"))
	set("nodelist.node.1.nodeid", u32Value(1))
	set("nodelist.node.1.name", strValue("alpha"))
	set("nodelist.node.1.ring0_addr", strValue("10.0.0.1"))
	set("nodelist.node.1.ring1_addr", strValue("10.1.0.1"))
	set("nodelist.node.1.quorum_votes", u32Value(2))
	set("nodelist.node.2.nodeid", u32Value(2)) // no name: ring0_addr
	set("nodelist.node.2.ring0_addr", strValue("fe80::2"))
	set("nodelist.node.2.quorum_votes", strValue("5")) // not a UINT32: not set
	set("nodelist.node.3.nodeid", strValue("4"))       // not a UINT32: left out
	set("nodelist.node.3.ring0_addr", strValue("10.0.0.4"))
	set("nodelist.node.4.ring0_addr", strValue("10.0.0.5")) // no nodeid: left out
	set("nodelist.node.10.nodeid", u32Value(11))
	set("nodelist.node.10.name", strValue(strings.Repeat("n", 300))) // longer than a guess
	set("nodelist.node.10.ring0_addr", strValue("10.0.0.11"))
	set("nodelist.nodes", u32Value(99)) // not a node entry
}

func TestFakeVotes(t *testing.T) {
	for _, version := range fakeVersions {
		for _, socket := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/socket=%v", version, socket), func(t *testing.T) {
				testFakeVotes(t, version, socket)
			})
		}
	}
}

func testFakeVotes(t *testing.T, version string, socket bool) {
	f := newFakeVotes(t, version)
	nodelistKeys(f)
	f.local = 1
	for _, i := range []model.VoteInfo{
		{NodeID: 1, State: model.NodeMember, Votes: 2, Expected: 4, HighestExpected: 4, TotalVotes: 4, Quorum: 3,
			Flags: model.FlagQuorate | model.FlagWaitForAll | model.FlagQdeviceRegistered, QdeviceVotes: 1, QdeviceName: "Qdevice"},
		{NodeID: 2, State: model.NodeMember, Votes: 1, Expected: 4, HighestExpected: 4, TotalVotes: 4, Quorum: 3, Flags: model.FlagQuorate},
		{NodeID: 3, State: model.NodeDead, Votes: 1, Expected: 4, HighestExpected: 4, TotalVotes: 4, Quorum: 3, Flags: model.FlagQuorate},
	} {
		f.info[i.NodeID] = i
	}
	ring := model.RingID{NodeID: 1, Seq: 0x44}
	f.snapshot = [][]byte{
		voteNodeListMsg(ring, 1, 2),
		voteQuorumMsg(true, model.VoteNode{ID: 1, State: 1}, model.VoteNode{ID: 2, State: 1}, model.VoteNode{ID: 3, State: 2}, model.VoteNode{}),
		voteExtraInfoMsg(1, "main's id 7"), // undecoded, it says that something changed
	}
	c := runFakeVotes(t, f, socket, true)
	if c.Provider() != ProviderVotequorum || !c.HasVotequorum() || len(c.Fds()) != 2 || c.Family() != f.family() {
		t.Fatalf("provider %q votequorum %v fds %v family %v", c.Provider(), c.HasVotequorum(), c.Fds(), c.Family())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg, err := c.Config(ctx)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	long := strings.Repeat("n", 300)
	want := []model.ConfNode{{ID: 1, Name: "alpha", Votes: 2}, {ID: 2, Name: "fe80::2"}, {ID: 3, Name: "gamma"}, {ID: 11, Name: long}}
	if version == "2.4" {
		// corosync-quorumtool 2.x shows ring0_addr, name or not.
		want = []model.ConfNode{{ID: 1, Name: "10.0.0.1", Votes: 2}, {ID: 2, Name: "fe80::2"}, {ID: 3, Name: "10.0.0.3"}, {ID: 11, Name: "10.0.0.11"}}
	}
	if cfg.Provider != ProviderVotequorum || !slices.Equal(cfg.Nodes, want) {
		t.Fatalf("Config %+v, want %+v", cfg, want)
	}
	f.mu.Lock()
	if len(f.iters) != 0 || len(f.finalized) != 1 {
		t.Errorf("open iterators %v, finalized %v", f.iters, f.finalized)
	}
	f.mu.Unlock()

	info, err := c.GetInfo(ctx, 0)
	if err != nil || info != f.info[1] {
		t.Fatalf("GetInfo(0) = %+v, %v; want %+v", info, err, f.info[1])
	}
	if info, err := c.GetInfo(ctx, 3); err != nil || info != f.info[3] {
		t.Fatalf("GetInfo(3) = %+v, %v", info, err)
	}
	_, err = c.GetInfo(ctx, 99)
	if ce := csErr(t, err, "votequorum_getinfo", cs.ErrNotExist); !strings.Contains(ce.Error(), "node 99") {
		t.Errorf("GetInfo(99): %v", err)
	}

	csErr(t, c.SetExpected(ctx, 3), "votequorum_setexpected", cs.ErrInvalidParam)
	if err := c.SetExpected(ctx, 5); err != nil {
		t.Fatalf("SetExpected(5): %v", err)
	}
	csErr(t, c.SetVotes(ctx, 99, 1), "votequorum_setvotes", cs.ErrNameNotFound)
	if err := c.SetVotes(ctx, 2, 3); err != nil {
		t.Fatalf("SetVotes(2, 3): %v", err)
	}
	f.mu.Lock()
	if !slices.Equal(f.expected, []uint32{5}) || !slices.Equal(f.votes, [][2]uint32{{2, 3}}) {
		t.Errorf("fake saw expected %v, votes %v", f.expected, f.votes)
	}
	f.mu.Unlock()

	if err := c.TrackStart(ctx); err != nil {
		t.Fatalf("TrackStart: %v", err)
	}
	got := dispatchVotes(t, c, 3)
	if len(got) != 3 || got[2].Kind != model.VoteOther || got[0].Kind != model.VoteNodeList || got[0].Ring != ring || !slices.Equal(got[0].Members, []uint32{1, 2}) ||
		got[1].Kind != model.VoteQuorum || !got[1].Quorate ||
		!slices.Equal(got[1].Nodes, []model.VoteNode{{ID: 1, State: 1}, {ID: 2, State: 1}, {ID: 3, State: 2}, {}}) {
		t.Fatalf("snapshot %+v", got)
	}
	wantTracks := []fakeTrack{
		{"nodelist.node.", CMapTrackAdd | CMapTrackDelete | CMapTrackModify | CMapTrackPrefix, cookieNodelist},
		{"config.totemconfig_reload_in_progress", CMapTrackAdd | CMapTrackDelete | CMapTrackModify, cookieReload},
	}
	f.mu.Lock()
	if !slices.Equal(f.tracks, wantTracks) {
		t.Errorf("tracks %+v, want %+v", f.tracks, wantTracks)
	}
	f.mu.Unlock()

	// Later events: expected votes, then a reload's cmap notifications,
	// which come out as one ConfigChanged, and one of a track that is not
	// this package's, which does not.
	for _, e := range [][]byte{voteExpectedMsg(5), voteExtraInfoMsg(2, "not decoded")} {
		if err := f.vq.SendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range [][]byte{
		cmapNotifyMsg(cookieReload, reloadKey, CMapTrackModify, 2, []byte{1}, 2, []byte{0}),
		cmapNotifyMsg(cookieNodelist, "nodelist.node.0.name", CMapTrackModify, CMapTypeString, []byte("g2\x00"), CMapTypeString, []byte("gamma\x00")),
		cmapNotifyMsg(cookieNodelist, "nodelist.node.4.ring0_addr", CMapTrackDelete, 0, nil, CMapTypeString, []byte("10.0.0.5\x00")),
		cmapNotifyMsg(cookieReload, reloadKey, CMapTrackModify, 2, []byte{0}, 2, []byte{1}),
	} {
		if err := f.cm.SendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	got = dispatchVotes(t, c, 3)
	if len(got) != 3 || got[0].Kind != model.VoteExpected || got[0].Expected != 5 || got[1].Kind != model.VoteOther ||
		got[2].Kind != model.ConfigChanged {
		t.Fatalf("after expected votes and a reload: %+v", got)
	}
	if err := f.cm.SendEvent(cmapNotifyMsg(77, "nodelist.node.0.name", CMapTrackModify, 11, []byte("x\x00"), 11, []byte("y\x00"))); err != nil {
		t.Fatal(err)
	}
	// The fake queues an event before its fd becomes readable.
	if err := qbipctest.WaitReadable(c.cmap.ipc.Fd(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Dispatch(func(e model.VoteEvent) { t.Errorf("a notification of a foreign track gave %+v", e) }); err != nil {
		t.Fatal(err)
	}

	// A second TrackStart adds no track, and corosync answers EXIST with
	// the snapshot queued again.
	csErr(t, c.TrackStart(ctx), "votequorum_trackstart", cs.ErrExist)
	if again := dispatchVotes(t, c, 3); len(again) != 3 || again[0].Kind != model.VoteNodeList {
		t.Fatalf("second snapshot %+v", again)
	}
	f.mu.Lock()
	if len(f.tracks) != 2 {
		t.Errorf("tracks after a second TrackStart: %+v", f.tracks)
	}
	f.mu.Unlock()
	if err := c.TrackStop(ctx); err != nil {
		t.Fatalf("TrackStop: %v", err)
	}
	csErr(t, c.TrackStop(ctx), "votequorum_trackstop", cs.ErrNotExist)
}

// TestFakeVotesNoProvider: without votequorum as the quorum provider,
// DialVotes does not connect to votequorum, its calls say why, and
// TrackStart tracks cmap only.
func TestFakeVotesNoProvider(t *testing.T) {
	for _, provider := range []string{"", "some_other_provider"} {
		t.Run(fmt.Sprintf("%q", provider), func(t *testing.T) {
			f := newFakeVotes(t, "3.1")
			if provider != "" {
				f.keys[providerKey] = strValue(provider)
			}
			f.keys["nodelist.node.0.nodeid"] = u32Value(1)
			f.keys["nodelist.node.0.ring0_addr"] = strValue("10.0.0.1")
			c := runFakeVotes(t, f, false, false)
			if c.HasVotequorum() || c.Provider() != provider || len(c.Fds()) != 1 {
				t.Fatalf("votequorum %v provider %q fds %v", c.HasVotequorum(), c.Provider(), c.Fds())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.GetInfo(ctx, 0)
			if ce := csErr(t, err, "votequorum_getinfo", cs.ErrNotSupported); !errors.Is(ce, ErrNoVotequorum) {
				t.Errorf("GetInfo: %v, want ErrNoVotequorum", err)
			}
			csErr(t, c.SetExpected(ctx, 1), "votequorum_setexpected", cs.ErrNotSupported)
			csErr(t, c.SetVotes(ctx, 1, 1), "votequorum_setvotes", cs.ErrNotSupported)
			cfg, err := c.Config(ctx)
			if err != nil || cfg.Provider != provider || !slices.Equal(cfg.Nodes, []model.ConfNode{{ID: 1, Name: "10.0.0.1"}}) {
				t.Fatalf("Config = %+v, %v", cfg, err)
			}
			if err := c.TrackStart(ctx); err != nil {
				t.Fatalf("TrackStart: %v", err)
			}
			f.mu.Lock()
			if len(f.tracks) != 2 {
				t.Errorf("tracks %+v", f.tracks)
			}
			f.mu.Unlock()
			if err := f.cm.SendEvent(cmapNotifyMsg(cookieNodelist, "nodelist.node.0.name", CMapTrackAdd, 11, []byte("a\x00"), 0, nil)); err != nil {
				t.Fatal(err)
			}
			if got := dispatchVotes(t, c, 1); len(got) != 1 || got[0].Kind != model.ConfigChanged {
				t.Fatalf("events %+v", got)
			}
		})
	}
}

// TestFakeVotesBadEvents: malformed notifications are errors of the
// service's dispatch, never panics, and nothing of them is delivered.
func TestFakeVotesBadEvents(t *testing.T) {
	many := voteQuorumMsg(true, model.VoteNode{ID: 1, State: 1})
	le.PutUint32(many[40:], 1000) // nodes beyond the message
	nl := voteNodeListMsg(model.RingID{NodeID: 1, Seq: 2}, 1)
	le.PutUint32(nl[48:], 2)
	notify := cmapNotifyMsg(cookieNodelist, "nodelist.node.0.name", CMapTrackModify, 11, []byte("a\x00"), 11, []byte("b\x00"))
	le.PutUint64(notify[328:], 1<<62) // old value beyond the message
	longKey := cmapNotifyMsg(cookieNodelist, "nodelist.node.0.name", CMapTrackModify, 11, nil, 11, nil)
	le.PutUint16(longKey[32:], 257)
	for name, tc := range map[string]struct {
		vq  bool
		msg []byte
	}{
		"quorum claiming 1000 nodes":  {true, many},
		"short quorum":                {true, reply(VoteResQuorum, 40, cs.OK)},
		"nodelist claiming 2 members": {true, nl},
		"short expected votes":        {true, reply(VoteResExpectedVotes, 32, cs.OK)},
		"cmap values beyond the end":  {false, notify},
		"cmap key of 257 bytes":       {false, longKey},
		"short cmap notification":     {false, reply(CMapResNotify, 300, cs.OK)},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeVotes(t, "3.1")
			f.keys[providerKey] = strValue(ProviderVotequorum)
			c := runFakeVotes(t, f, false, true)
			sc, op := f.vq, "votequorum_dispatch"
			if !tc.vq {
				sc, op = f.cm, "cmap_dispatch"
			}
			if err := sc.SendEvent(tc.msg); err != nil {
				t.Fatal(err)
			}
			var derr error
			for i := 0; i < 50 && derr == nil; i++ {
				waitAny(c.Fds(), 100*time.Millisecond)
				derr = c.Dispatch(func(e model.VoteEvent) { t.Errorf("delivered %+v", e) })
			}
			csErr(t, derr, op, cs.ErrLibrary)
		})
	}
}

// TestFakeVotesGuard: a request id that corosync 2.x does not have is
// refused before it is sent to a 2.x votequorum (the fake would fail the
// test), and the connection goes on.
func TestFakeVotesGuard(t *testing.T) {
	f := newFakeVotes(t, "2.4")
	f.keys[providerKey] = strValue(ProviderVotequorum)
	f.local = 1
	f.info[1] = model.VoteInfo{NodeID: 1, State: 1, Votes: 1}
	c := runFakeVotes(t, f, false, true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := request(voteReqCount, 24) // main's QDEVICE_SET_EXTRA_INFO
	_, err := guardedRequest(ctx, c.vq, c.family, VoteService, "votequorum_qdevice_set_extra_info", req, VoteResStatus)
	csErr(t, err, "votequorum_qdevice_set_extra_info", cs.ErrNotSupported)
	if info, err := c.GetInfo(ctx, 0); err != nil || info.NodeID != 1 {
		t.Fatalf("GetInfo after the refused request: %+v %v", info, err)
	}
}

// TestFakeIteratorAbandoned: an iteration whose caller's context ended
// while corosync held its reply leaves no iterator open: the next
// iteration finalizes it first, whether ITER_INIT's reply came late (its
// handle learnt after the caller left) or an ITER_NEXT's did.
func TestFakeIteratorAbandoned(t *testing.T) {
	for _, id := range []int32{CMapReqIterInit, CMapReqIterNext} {
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			f := newFakeVotes(t, "3.1")
			nodelistKeys(f)
			delete(f.keys, providerKey)
			c := runFakeVotes(t, f, false, false)
			release := make(chan struct{})
			held := make(chan struct{}, 1)
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(release) }) })
			f.mu.Lock()
			f.hold[id] = func() {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release
			}
			f.mu.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := c.Config(ctx)
				done <- err
			}()
			<-held
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Config with its context cancelled: %v", err)
			}
			f.mu.Lock()
			delete(f.hold, id)
			f.mu.Unlock()
			once.Do(func() { close(release) })
			ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel2()
			cfg, err := c.Config(ctx2)
			if err != nil || len(cfg.Nodes) != 4 {
				t.Fatalf("Config after: %+v, %v", cfg, err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.iters) != 0 || len(f.finalized) != 2 {
				t.Fatalf("open iterators %v, finalized %v", f.iters, f.finalized)
			}
		})
	}
}

// TestFakeCMapGet: a value longer than the buffer asked for costs a
// request for its length and one more for the value; a key that does not
// exist is CS_ERR_NOT_EXIST; a value of another type is an error.
func TestFakeCMapGet(t *testing.T) {
	f := newFakeVotes(t, "2.4")
	long := strings.Repeat("p", 1000)
	f.keys[providerKey] = strValue(long)
	f.keys["totem.token"] = u32Value(1000)
	c := runFakeVotes(t, f, true, false)
	if c.Provider() != long {
		t.Fatalf("provider of %d bytes", len(c.Provider()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, typ, code, err := c.cmap.get(ctx, "totem.token", 0)
	if x, ok := cmapUint32(v, typ); err != nil || code != cs.OK || !ok || x != 1000 {
		t.Fatalf("totem.token: %v %d %v %v", v, typ, code, err)
	}
	if _, _, code, err := c.cmap.get(ctx, "no.such.key", 0); err != nil || code != cs.ErrNotExist {
		t.Fatalf("missing key: %v %v", code, err)
	}
	_, _, err = c.cmap.getString(ctx, "totem.token", 0)
	csErr(t, err, "cmap_get", cs.ErrInvalidParam)
	if _, _, _, err := c.cmap.get(ctx, "bad\x00key", 0); err == nil {
		t.Fatal("a key with a NUL was sent")
	}
}

func TestVoteCodec(t *testing.T) {
	// Offsets of the requests, as ipc_votequorum.h lays them out.
	if b := EncodeVoteSetVotes(7, 3); len(b) != 24 || le.Uint32(b[16:]) != 3 || le.Uint32(b[20:]) != 7 || le.Uint32(b[8:]) != 24 {
		t.Errorf("SETVOTES %x", b)
	}
	if b := EncodeVoteTrackStart(9, 2); len(b) != 32 || le.Uint64(b[16:]) != 9 || le.Uint32(b[24:]) != 2 {
		t.Errorf("TRACKSTART %x", b)
	}
	if b, err := EncodeCMapTrackAdd("k", 12, 5); err != nil || len(b) != 296 || le.Uint32(b[280:]) != 12 || le.Uint64(b[288:]) != 5 {
		t.Errorf("TRACK_ADD %x %v", b, err)
	}
	if _, err := EncodeCMapIterInit(strings.Repeat("k", 256)); err == nil {
		t.Error("a 256-byte prefix was encoded")
	}
	// A qdevice name fills its field without a NUL: malformed.
	b := voteInfoMsg(model.VoteInfo{NodeID: 1})
	for i := 60; i < 315; i++ {
		b[i] = 'q'
	}
	if _, _, err := DecodeVoteInfo(b); err == nil {
		t.Error("a qdevice name without NUL was decoded")
	}
	b[314] = 0
	if i, _, err := DecodeVoteInfo(b); err != nil || len(i.QdeviceName) != 254 {
		t.Errorf("254-byte qdevice name: %d %v", len(i.QdeviceName), err)
	}
	// An error reply's fields are not read; a bare one is accepted.
	if _, code, err := DecodeVoteInfo(reply(0, 24, cs.ErrAccess)); err != nil || code != cs.ErrAccess {
		t.Errorf("bare error: %v %v", code, err)
	}
	if _, code, err := DecodeVoteInfo(reply(VoteResGetInfo, 320, cs.ErrNotExist)); err != nil || code != cs.ErrNotExist {
		t.Errorf("not exist: %v %v", code, err)
	}
	if _, _, err := DecodeVoteInfo(reply(VoteResGetInfo, 300, cs.OK)); err == nil {
		t.Error("short getinfo reply decoded")
	}
	// Unknown notification ids are not decoded, and not errors.
	if _, ok, err := DecodeVoteNotification(voteExtraInfoMsg(1, "x")); ok || err != nil {
		t.Errorf("id 7: %v %v", ok, err)
	}
}

// TestFakeTrackAbandoned: a TrackStart whose context ended while cmap held
// a TRACK_ADD reply still learns that corosync added the track, so that the
// next TrackStart does not add it twice (it would notify twice).
func TestFakeTrackAbandoned(t *testing.T) {
	f := newFakeVotes(t, "2.4")
	f.keys[providerKey] = strValue(ProviderVotequorum)
	c := runFakeVotes(t, f, false, true)
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	f.mu.Lock()
	f.hold[CMapReqTrackAdd] = func() {
		held <- struct{}{}
		<-release
	}
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.TrackStart(ctx) }()
	<-held
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("TrackStart with its context cancelled: %v", err)
	}
	f.mu.Lock()
	delete(f.hold, CMapReqTrackAdd)
	f.mu.Unlock()
	once.Do(func() { close(release) })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := c.TrackStart(ctx2); err != nil {
		t.Fatalf("TrackStart after: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tracks) != 2 || f.tracks[0].cookie != cookieNodelist || f.tracks[1].cookie != cookieReload || !f.tracking {
		t.Fatalf("tracks %+v, votequorum tracking %v", f.tracks, f.tracking)
	}
}
