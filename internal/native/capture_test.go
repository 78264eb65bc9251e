//go:build linux && capture

package native

// This file records real votequorum and cmap messages of a 3-node cluster
// (internal/testcluster) as seed corpora for the fuzz targets of
// fuzz_votes_test.go. Run as root:
//
//	go test -tags capture -run TestCaptureVotes ./internal/native

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
	"github.com/corosync-go/quorum/internal/qbipc/qbipctest"
	"github.com/corosync-go/quorum/internal/testcluster"
)

func writeSeed(t *testing.T, target, name string, b []byte) {
	t.Helper()
	d := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
	if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCaptureVotes(t *testing.T) {
	cl := testcluster.Start(t, 3, testcluster.Votes(1, 2))
	n := &corosyncNode{c: cl, i: 1}
	c := n.dialVotes(t)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	version := cl.Install().Version.String()
	raw := func(ipc *qbipc.Conn, req []byte) []byte {
		t.Helper()
		resp, err := ipc.Request(ctx, req, func(qbipc.ResponseHeader) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	seed := func(target, name string, b []byte) { writeSeed(t, target, version+"-"+name, b) }

	seed("FuzzVoteInfo", "getinfo-local", raw(c.vq, EncodeVoteGetInfo(0)))
	seed("FuzzVoteInfo", "getinfo-unknown", raw(c.vq, EncodeVoteGetInfo(99)))
	seed("FuzzVoteInfo", "setexpected-refused", raw(c.vq, EncodeVoteSetExpected(1)))

	get, _ := EncodeCMapGet(providerKey, 256)
	seed("FuzzCMapReply", "get-provider", raw(c.cmap.ipc, get))
	get, _ = EncodeCMapGet("nodelist.node.0.nodeid", 0)
	seed("FuzzCMapReply", "get-length", raw(c.cmap.ipc, get))
	get, _ = EncodeCMapGet("no.such.key", 16)
	seed("FuzzCMapReply", "get-not-exist", raw(c.cmap.ipc, get))
	ini, _ := EncodeCMapIterInit(nodelistPrefix)
	resp := raw(c.cmap.ipc, ini)
	seed("FuzzCMapReply", "iter-init", resp)
	h, _, err := DecodeCMapIterInit(resp)
	if err != nil {
		t.Fatal(err)
	}
	seed("FuzzCMapReply", "iter-next", raw(c.cmap.ipc, EncodeCMapIterNext(h)))
	for {
		resp = raw(c.cmap.ipc, EncodeCMapIterNext(h))
		if _, code, _ := DecodeCMapIterNext(resp); code != 1 {
			seed("FuzzCMapReply", "iter-end", resp)
			break
		}
	}
	seed("FuzzCMapReply", "iter-finalize", raw(c.cmap.ipc, EncodeCMapIterFinalize(h)))
	track, _ := EncodeCMapTrackAdd(nodelistPrefix, CMapTrackAdd|CMapTrackDelete|CMapTrackModify|CMapTrackPrefix, cookieNodelist)
	seed("FuzzCMapReply", "track-add", raw(c.cmap.ipc, track))
	track, _ = EncodeCMapTrackAdd(reloadKey, CMapTrackAdd|CMapTrackDelete|CMapTrackModify, cookieReload)
	raw(c.cmap.ipc, track)

	events := func(ipc *qbipc.Conn, want int) [][]byte {
		t.Helper()
		var got [][]byte
		deadline := time.Now().Add(30 * time.Second)
		for len(got) < want && time.Now().Before(deadline) {
			_ = qbipctest.WaitReadable(ipc.Fd(), 200*time.Millisecond)
			for {
				msg, ok, err := ipc.ReadEvent()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				got = append(got, msg)
			}
		}
		if len(got) < want {
			t.Fatalf("%d events, want %d", len(got), want)
		}
		return got
	}
	if r := raw(c.vq, EncodeVoteTrackStart(voteTrackContext, trackChanges)); len(r) != 24 {
		t.Fatalf("trackstart reply %x", r)
	}
	snap := events(c.vq, 2)
	seed("FuzzVoteNotification", "nodelist", snap[0])
	seed("FuzzVoteNotification", "quorum", snap[1])
	if r := raw(c.vq, EncodeVoteSetExpected(5)); len(r) != 24 {
		t.Fatalf("setexpected reply %x", r)
	}
	seed("FuzzVoteNotification", "expectedvotes", events(c.vq, 1)[0])

	conf, err := os.ReadFile(cl.ConfPath(1))
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(conf), "name: node2", "name: renamed2", 1)
	if err := os.WriteFile(cl.ConfPath(1), []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cl.Output(ctx, 1, cl.Install().Cfgtool, "-R"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, e := range events(c.cmap.ipc, 2) {
		seed("FuzzCMapNotify", "reload-"+strconv.Itoa(i), e)
	}

	if err := cl.Kill(3); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range events(c.vq, 1) {
			ev, _, err := DecodeVoteNotification(e)
			if err == nil && ev.Kind == model.VoteQuorum && slices.Contains(ev.Nodes, model.VoteNode{ID: 3, State: model.NodeDead}) {
				seed("FuzzVoteNotification", "quorum-dead", e)
				return
			}
		}
	}
	t.Fatal("no quorum notification with node 3 dead")
}
