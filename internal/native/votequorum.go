//go:build linux

package native

import (
	"bytes"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// VoteService is the libqb service name of corosync's votequorum (service
// id 5). corosync serves it only when quorum.provider is
// corosync_votequorum.
const VoteService = "votequorum"

// votequorum request ids (enum req_votequorum_types). Every corosync from
// 2.0 to 3.1 has 0-9 (5-9 belong to the qdevice daemon); main adds 10 and
// 11. Only 0-4 are sent.
const (
	VoteReqGetInfo     = 0
	VoteReqSetExpected = 1
	VoteReqSetVotes    = 2
	VoteReqTrackStart  = 3
	VoteReqTrackStop   = 4
	// voteReqCount is how many ids corosync 2.x's table has.
	voteReqCount = 10
)

// votequorum response and notification ids (enum res_votequorum_types) as
// of corosync 2.4.0. SETEXPECTED, SETVOTES, TRACKSTART and TRACKSTOP are all
// answered with STATUS; 2.3 numbered its notifications differently (a
// combined quorum notification with a ring id, id 3, and no nodelist), which
// this package does not decode.
const (
	VoteResStatus        = 0
	VoteResGetInfo       = 1
	VoteResQuorum        = 3
	VoteResExpectedVotes = 4
	VoteResNodeList      = 5
)

// QdeviceNameMax is the size of the qdevice name field of GETINFO's reply,
// its NUL included (VOTEQUORUM_QDEVICE_MAX_NAME_LEN).
const QdeviceNameMax = 255

// Sizes and offsets of votequorum's messages on 64-bit Linux, unchanged
// from corosync 2.4.0 to main: every field the headers declare aligned(8)
// starts on a multiple of 8.
const (
	voteInfoName    = 60                            // qdevice name in GETINFO's reply
	voteInfoSize    = voteInfoName + QdeviceNameMax // 315, padded to 320 by corosync
	voteQuorumHdr   = 48                            // QUORUM: quorate @24, context @32, n @40, {id, state} pairs @48
	voteExpectedLen = 36                            // EXPECTEDVOTES: context @24, expected @32 (40 with padding)
	voteNodeListHdr = 56                            // NODELIST: context @24, ring {id @32, seq @40}, n @48, ids @56
)

// EncodeVoteGetInfo is GETINFO of nodeID (0: the node corosync runs on).
func EncodeVoteGetInfo(nodeID uint32) []byte {
	b := request(VoteReqGetInfo, 24)
	le.PutUint32(b[16:], nodeID)
	return b
}

// EncodeVoteSetExpected is SETEXPECTED.
func EncodeVoteSetExpected(expected uint32) []byte {
	b := request(VoteReqSetExpected, 24)
	le.PutUint32(b[16:], expected)
	return b
}

// EncodeVoteSetVotes is SETVOTES: votes @16, node id @20.
func EncodeVoteSetVotes(nodeID, votes uint32) []byte {
	b := request(VoteReqSetVotes, 24)
	le.PutUint32(b[16:], votes)
	le.PutUint32(b[20:], nodeID)
	return b
}

// EncodeVoteTrackStart is TRACKSTART: the context corosync copies into
// every notification (u64 @16) and CS_TRACK_* flags (u32 @24).
func EncodeVoteTrackStart(context uint64, flags uint32) []byte {
	b := request(VoteReqTrackStart, 32)
	le.PutUint64(b[16:], context)
	le.PutUint32(b[24:], flags)
	return b
}

// EncodeVoteTrackStop is TRACKSTOP.
func EncodeVoteTrackStop() []byte { return request(VoteReqTrackStop, qbipc.RequestHeaderSize) }

// DecodeVoteInfo decodes GETINFO's reply. code is corosync's status (an
// unknown node is CS_ERR_NOT_EXIST); the info is read only when it is CS_OK,
// since corosync leaves the fields unset otherwise. err is for malformed
// replies only, including a qdevice name with no NUL in its 255 bytes.
func DecodeVoteInfo(b []byte) (info model.VoteInfo, code cs.Code, err error) {
	h, err := DecodeResponse(b, VoteResGetInfo)
	if err != nil {
		return info, 0, err
	}
	if cs.Code(h.Error) != cs.OK {
		return info, cs.Code(h.Error), nil
	}
	if err := need(b, voteInfoSize, "votequorum getinfo reply"); err != nil {
		return info, 0, err
	}
	name := b[voteInfoName:voteInfoSize]
	n := bytes.IndexByte(name, 0)
	if n < 0 {
		return info, 0, fmt.Errorf("%w: votequorum getinfo reply: qdevice name not NUL-terminated within %d bytes", errMalformed, QdeviceNameMax)
	}
	u := func(off int) uint32 { return le.Uint32(b[off:]) }
	return model.VoteInfo{
		NodeID: u(24), State: u(28), Votes: u(32), Expected: u(36), HighestExpected: u(40),
		TotalVotes: u(44), Quorum: u(48), Flags: u(52), QdeviceVotes: u(56),
		QdeviceName: string(name[:n]),
	}, cs.OK, nil
}

// DecodeVoteNotification decodes a votequorum notification. ok is false,
// with no error, for an id this package does not know: corosync's main
// branch sends qdevice extra information as id 7 to every tracker, and a
// client must skip it. The context corosync echoes is not returned.
func DecodeVoteNotification(b []byte) (ev model.VoteEvent, ok bool, err error) {
	h, err := qbipc.ParseResponseHeader(b)
	if err != nil {
		return ev, false, err
	}
	switch h.ID {
	case VoteResQuorum:
		if err := need(b, voteQuorumHdr, "votequorum quorum notification"); err != nil {
			return ev, false, err
		}
		n := le.Uint32(b[40:])
		if end := uint64(voteQuorumHdr) + 8*uint64(n); end > uint64(len(b)) {
			return ev, false, fmt.Errorf("%w: votequorum quorum notification of %d bytes claims %d nodes", errMalformed, len(b), n)
		}
		nodes := make([]model.VoteNode, n)
		for i := range nodes {
			off := voteQuorumHdr + 8*i
			nodes[i] = model.VoteNode{ID: le.Uint32(b[off:]), State: le.Uint32(b[off+4:])}
		}
		return model.VoteEvent{Kind: model.VoteQuorum, Quorate: le.Uint32(b[24:]) != 0, Nodes: nodes}, true, nil
	case VoteResExpectedVotes:
		if err := need(b, voteExpectedLen, "votequorum expected votes notification"); err != nil {
			return ev, false, err
		}
		return model.VoteEvent{Kind: model.VoteExpected, Expected: le.Uint32(b[32:])}, true, nil
	case VoteResNodeList:
		if err := need(b, voteNodeListHdr, "votequorum nodelist notification"); err != nil {
			return ev, false, err
		}
		m, err := uint32s(b, voteNodeListHdr, le.Uint32(b[48:]))
		if err != nil {
			return ev, false, err
		}
		return model.VoteEvent{Kind: model.VoteNodeList,
			Ring: model.RingID{NodeID: le.Uint32(b[32:]), Seq: le.Uint64(b[40:])}, Members: m}, true, nil
	}
	return ev, false, nil
}
