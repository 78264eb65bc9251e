//go:build linux

package native

import (
	"bytes"
	"slices"
	"testing"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// Seeds live in testdata/fuzz: real corosync messages of a 3-node cluster
// recorded with capture_test.go, and below, the messages the fake servers
// send.

func FuzzVoteNotification(f *testing.F) {
	f.Add(voteNodeListMsg(model.RingID{NodeID: 1, Seq: 9}, 1, 2, 3))
	f.Add(voteQuorumMsg(true, model.VoteNode{ID: 2, State: 1}, model.VoteNode{ID: 3, State: 2}, model.VoteNode{}))
	f.Add(voteExpectedMsg(5))
	f.Add(voteExtraInfoMsg(1, "extra"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := DecodeVoteNotification(b)
		if err != nil || !ok {
			if ok || ev.Kind != 0 || ev.Nodes != nil || ev.Members != nil {
				t.Fatalf("an event %+v with ok %v, error %v", ev, ok, err)
			}
			return
		}
		if 8*len(ev.Nodes)+4*len(ev.Members) > len(b) {
			t.Fatalf("%d nodes and %d members from %d bytes", len(ev.Nodes), len(ev.Members), len(b))
		}
		switch ev.Kind {
		case model.VoteQuorum, model.VoteExpected, model.VoteNodeList:
		default:
			t.Fatalf("kind %v", ev.Kind)
		}
	})
}

func FuzzVoteInfo(f *testing.F) {
	f.Add(voteInfoMsg(model.VoteInfo{NodeID: 1, State: 1, Votes: 1, Expected: 3, HighestExpected: 3, TotalVotes: 3,
		Quorum: 2, Flags: model.FlagQuorate | model.FlagQdeviceRegistered, QdeviceVotes: 1, QdeviceName: "Qdevice"}))
	f.Add(reply(VoteResGetInfo, 320, cs.ErrNotExist))
	f.Add(reply(0, 24, cs.ErrInvalidParam))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, code, err := DecodeVoteInfo(b)
		if err != nil || code != cs.OK {
			if info != (model.VoteInfo{}) {
				t.Fatalf("info %+v with code %v, error %v", info, code, err)
			}
			return
		}
		if len(info.QdeviceName) >= QdeviceNameMax || bytes.IndexByte([]byte(info.QdeviceName), 0) >= 0 {
			t.Fatalf("qdevice name %q", info.QdeviceName)
		}
	})
}

// FuzzCMapReply feeds every cmap reply decoder the same bytes.
func FuzzCMapReply(f *testing.F) {
	get := reply(CMapResGet, 40+8, cs.OK)
	le.PutUint64(get[24:], 20) // provider "corosync_votequorum"
	get[32] = CMapTypeString
	f.Add(get)
	next := reply(CMapResIterNext, 304, cs.OK)
	le.PutUint16(next[24:], 22)
	copy(next[32:], "nodelist.node.0.nodeid")
	le.PutUint64(next[288:], 4)
	next[296] = CMapTypeUint32
	f.Add(next)
	f.Add(reply(CMapResIterNext, 304, cs.ErrNoSections))
	f.Add(reply(CMapResIterInit, 32, cs.OK))
	f.Add(reply(CMapResTrackAdd, 32, cs.OK))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, _, code, err := DecodeCMapGetLen(b)
		if err == nil && code == cs.OK && v != nil && (uint64(len(v)) != n || len(v) > len(b)) {
			t.Fatalf("value of %d bytes, length %d, from %d bytes", len(v), n, len(b))
		}
		if err != nil && v != nil {
			t.Fatal("a value with an error")
		}
		k, code, err := DecodeCMapIterNext(b)
		if (err != nil || code != cs.OK) && k != (CMapKey{}) {
			t.Fatalf("key %+v with code %v, error %v", k, code, err)
		}
		if len(k.Name) > cmapNameMax {
			t.Fatalf("key of %d bytes", len(k.Name))
		}
		for _, dec := range []func([]byte) (uint64, cs.Code, error){DecodeCMapIterInit, DecodeCMapTrackAdd} {
			if h, code, err := dec(b); (err != nil || code != cs.OK) && h != 0 {
				t.Fatalf("handle %d with code %v, error %v", h, code, err)
			}
		}
	})
}

func FuzzCMapNotify(f *testing.F) {
	f.Add(cmapNotifyMsg(cookieNodelist, "nodelist.node.1.name", CMapTrackModify, CMapTypeString, []byte("renamed2\x00"), CMapTypeString, []byte("node2\x00")))
	f.Add(cmapNotifyMsg(cookieReload, reloadKey, CMapTrackModify, 2, []byte{0}, 2, []byte{1}))
	f.Add(cmapNotifyMsg(cookieNodelist, "nodelist.node.2.nodeid", CMapTrackDelete, 0, nil, CMapTypeUint32, []byte{3, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeCMapNotify(b)
		if err != nil {
			if n.Key != "" || n.New != nil || n.Old != nil {
				t.Fatalf("notification %+v with error %v", n, err)
			}
			return
		}
		if len(n.Key) > cmapNameMax || len(n.New)+len(n.Old) > len(b) {
			t.Fatalf("key of %d bytes, values of %d and %d from %d bytes", len(n.Key), len(n.New), len(n.Old), len(b))
		}
		if !slices.Equal(n.New, b[cmapNotifyValues:cmapNotifyValues+len(n.New)]) {
			t.Fatal("new value not where the message has it")
		}
	})
}

// TestRecordedVoteMessages decodes what 3-node corosync 3.1.7 and 2.4.6
// clusters (node 1 with 2 votes, nodes named node1 to node3) sent node 1,
// checking the layout facts the codec rests on.
func TestRecordedVoteMessages(t *testing.T) {
	for _, v := range []string{"3.1.7-", "2.4.6-"} {
		t.Run(v, func(t *testing.T) { testRecordedVoteMessages(t, v) })
	}
}

func testRecordedVoteMessages(t *testing.T, v string) {
	info, code, err := DecodeVoteInfo(seed(t, "FuzzVoteInfo", v+"getinfo-local"))
	if err != nil || code != cs.OK || info.NodeID != 1 || info.State != model.NodeMember || info.Votes != 2 ||
		info.Expected != 4 || info.HighestExpected != 4 || info.TotalVotes != 4 || info.Quorum != 3 ||
		info.Flags != model.FlagQuorate || info.QdeviceName != "" {
		t.Errorf("getinfo: %+v %v %v", info, code, err)
	}
	if _, code, err := DecodeVoteInfo(seed(t, "FuzzVoteInfo", v+"getinfo-unknown")); err != nil || code != cs.ErrNotExist {
		t.Errorf("getinfo of an unknown node: %v %v", code, err)
	}
	ev, ok, err := DecodeVoteNotification(seed(t, "FuzzVoteNotification", v+"nodelist"))
	if err != nil || !ok || ev.Kind != model.VoteNodeList || ev.Ring.NodeID != 1 || !slices.Equal(ev.Members, []uint32{1, 2, 3}) {
		t.Errorf("nodelist: %+v %v", ev, err)
	}
	ev, ok, err = DecodeVoteNotification(seed(t, "FuzzVoteNotification", v+"quorum"))
	if err != nil || !ok || ev.Kind != model.VoteQuorum || !ev.Quorate || len(ev.Nodes) != 3 {
		t.Errorf("quorum: %+v %v", ev, err)
	}
	ev, ok, err = DecodeVoteNotification(seed(t, "FuzzVoteNotification", v+"expectedvotes"))
	if err != nil || !ok || ev.Kind != model.VoteExpected || ev.Expected != 5 {
		t.Errorf("expected votes: %+v %v", ev, err)
	}
	ev, ok, err = DecodeVoteNotification(seed(t, "FuzzVoteNotification", v+"quorum-dead"))
	if err != nil || !ok || !slices.Contains(ev.Nodes, model.VoteNode{ID: 3, State: model.NodeDead}) {
		t.Errorf("quorum after a kill: %+v %v", ev, err)
	}
	val, typ, code, err := DecodeCMapGet(seed(t, "FuzzCMapReply", v+"get-provider"))
	if s, ok := cmapString(val, typ); err != nil || code != cs.OK || !ok || s != ProviderVotequorum {
		t.Errorf("get quorum.provider: %q %d %v %v", val, typ, code, err)
	}
	if val, n, typ, code, err := DecodeCMapGetLen(seed(t, "FuzzCMapReply", v+"get-length")); err != nil || code != cs.OK ||
		val != nil || n != 4 || typ != CMapTypeUint32 {
		t.Errorf("get nodeid's length: %v %d %d %v %v", val, n, typ, code, err)
	}
	k, code, err := DecodeCMapIterNext(seed(t, "FuzzCMapReply", v+"iter-next"))
	if err != nil || code != cs.OK || k.Name != "nodelist.node.0.name" || k.Type != CMapTypeString || k.Len != 6 {
		t.Errorf("iter_next: %+v %v %v", k, code, err)
	}
	if _, code, err := DecodeCMapIterNext(seed(t, "FuzzCMapReply", v+"iter-end")); err != nil || code != cs.ErrNoSections {
		t.Errorf("iter_next at the end: %v %v", code, err)
	}
	n, err := DecodeCMapNotify(seed(t, "FuzzCMapNotify", v+"reload-0"))
	if err != nil || n.Cookie != cookieReload && n.Cookie != cookieNodelist {
		t.Errorf("notification: %+v %v", n, err)
	}
}
