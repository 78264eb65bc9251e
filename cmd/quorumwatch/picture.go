package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/corosync-go/quorum"
)

// pictureOnce prints the whole picture once, as corosync-quorumtool -s does
// (or one JSON object), and returns exitOK if quorate, exitNotQuorate if
// not, exitError if the picture is not known within --timeout.
func (w *watcher) pictureOnce(ctx context.Context, opts []quorum.OpenOption) int {
	tctx, cancel := context.WithTimeout(ctx, w.cfg.timeout)
	defer cancel()
	c, err := w.openOnce(tctx, append(opts, quorum.WithPicture()))
	if err != nil {
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return w.connectFailed(err)
	}
	defer c.Close()
	ch, err := c.SubscribePicture(tctx)
	if err != nil {
		return w.fail("%v", err)
	}
	for p := range ch {
		if !p.Connected || p.Syncing {
			if p.Err != nil && !p.Syncing {
				return w.failed(p.Err)
			}
			continue
		}
		cancel()
		for range ch {
		}
		if err := w.out.printSummary(p); err != nil {
			return w.fail("writing output: %v", err)
		}
		if p.Quorate {
			return exitOK
		}
		return exitNotQuorate
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return w.fail("corosync accepted the connection but the picture was not read within --timeout %v "+
		"(is it frozen or overloaded?)", w.cfg.timeout)
}

// streamPictures prints every picture until ctx ends (exit 0) or the stream
// ends in error (exit 1).
func (w *watcher) streamPictures(ctx context.Context, opts []quorum.OpenOption) int {
	c, err := w.open(ctx, append(opts, quorum.WithPicture()))
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return w.connectFailed(err)
	}
	defer c.Close()
	ch, err := c.SubscribePicture(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return w.fail("%v", err)
	}
	var last quorum.Picture
	for p := range ch {
		last = p
		if err := w.out.printPicture(p); err != nil {
			return w.fail("writing output: %v", err)
		}
	}
	if last.Err != nil && ctx.Err() == nil {
		return w.failed(last.Err)
	}
	return exitOK
}

// printPicture writes p as one line: text or JSON.
func (p *printer) printPicture(pic quorum.Picture) error {
	return p.line(func() any { return pictureJSON(pic) }, func() string { return pictureLine(pic) })
}

// printSummary writes p as corosync-quorumtool -s lays it out, or as one
// JSON object.
func (p *printer) printSummary(pic quorum.Picture) error {
	if p.json {
		return p.printPicture(pic)
	}
	p.buf.Reset()
	writeSummary(&p.buf, pic)
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// pictureLine formats a picture as
//
//	2026-12-01T10:00:00.123Z ring 1.2c quorate expected 3 total 3 quorum 2 flags [Quorate] nodes node1(1):1:member:local node2(2):1:member node3(3):1:dead
//
// followed by " syncing" while the votes are re-read and " error: ..." when
// the state is unknown.
func pictureLine(pic quorum.Picture) string {
	var b strings.Builder
	state := pictureState(pic)
	fmt.Fprintf(&b, "%s ring %s %s expected %d total %d quorum %d flags [%s] nodes",
		pic.Time.UTC().Format(humanTime), pic.RingID, state, pic.ExpectedVotes, pic.TotalVotes, pic.Quorum, pic.Flags)
	for _, n := range pic.Nodes {
		fmt.Fprintf(&b, " %s:%d:%s", nodeLabel(n), n.Votes, n.State)
		if n.Local {
			b.WriteString(":local")
		}
	}
	if pic.Qdevice.Registered {
		fmt.Fprintf(&b, " qdevice:%d:%s", pic.Qdevice.Votes, pic.Qdevice.QdeviceState)
	}
	if pic.Provider == "" && pic.Connected {
		b.WriteString(" provider none")
	}
	if pic.Syncing {
		b.WriteString(" syncing")
	}
	if pic.Err != nil {
		b.WriteString(" error: ")
		b.WriteString(oneLine(pic.Err.Error()))
	}
	return b.String()
}

// pictureState is the state word of a picture: "unknown" when corosync
// cannot be reached, or when it did not answer the last re-read (frozen or
// overloaded: its last quorate cannot be vouched for), else quorate or
// inquorate.
func pictureState(pic quorum.Picture) string {
	switch {
	case !pic.Connected || pic.Err != nil:
		return "unknown"
	case pic.Quorate:
		return "quorate"
	}
	return "inquorate"
}

// nodeLabel shows a node as people know it: its name, with its id.
func nodeLabel(n quorum.NodeInfo) string {
	if n.Name == "" {
		return fmt.Sprintf("%d", n.ID)
	}
	return fmt.Sprintf("%s(%d)", n.Name, n.ID)
}

// writeSummary lays pic out as corosync-quorumtool -s does, with the nodes
// that are not members listed after the members.
func writeSummary(w io.Writer, pic quorum.Picture) {
	yesNo := map[bool]string{true: "Yes", false: "No"}
	provider := pic.Provider
	if provider == "" {
		provider = "Not configured"
	}
	members := pic.Members()
	fmt.Fprintf(w, "Quorum information\n------------------\n")
	fmt.Fprintf(w, "Date:             %s\n", pic.Time.Format(time.ANSIC))
	fmt.Fprintf(w, "Quorum provider:  %s\n", provider)
	fmt.Fprintf(w, "Nodes:            %d\n", len(members))
	fmt.Fprintf(w, "Node ID:          %d\n", pic.NodeID)
	fmt.Fprintf(w, "Ring ID:          %s\n", pic.RingID)
	fmt.Fprintf(w, "Quorate:          %s\n", yesNo[pic.Quorate])
	if pic.Provider != "" {
		fmt.Fprintf(w, "\nVotequorum information\n----------------------\n")
		fmt.Fprintf(w, "Expected votes:   %d\n", pic.ExpectedVotes)
		fmt.Fprintf(w, "Highest expected: %d\n", pic.HighestExpected)
		fmt.Fprintf(w, "Total votes:      %d\n", pic.TotalVotes)
		fmt.Fprintf(w, "Quorum:           %d", pic.Quorum)
		if pic.Flags&quorum.FlagQuorate == 0 {
			fmt.Fprintf(w, " Activity blocked")
		}
		fmt.Fprintf(w, "\nFlags:            %s\n", pic.Flags)
	}
	fmt.Fprintf(w, "\nMembership information\n----------------------\n")
	// The tool's columns: ten characters, right-aligned.
	qd := pic.Qdevice.Registered
	if qd {
		fmt.Fprintf(w, "%10s %10s %10s %s\n", "Nodeid", "Votes", "Qdevice", "Name")
	} else {
		fmt.Fprintf(w, "%10s %10s %s\n", "Nodeid", "Votes", "Name")
	}
	for _, n := range pic.Nodes {
		if n.State != quorum.NodeMember {
			continue
		}
		name := n.Name
		if n.Local {
			name += " (local)"
		}
		if qd {
			fmt.Fprintf(w, "%10d %10d %10s %s\n", n.ID, n.Votes, n.Qdevice, name)
		} else {
			fmt.Fprintf(w, "%10d %10d %s\n", n.ID, n.Votes, name)
		}
	}
	if q := pic.Qdevice; qd {
		// As the tool: a device that does not vote shows 0 votes, and
		// its configured votes after its name.
		if q.CastVote {
			fmt.Fprintf(w, "%10d %10d %10s %s\n", 0, q.Votes, "", q.Name)
		} else {
			fmt.Fprintf(w, "%10d %10d %10s %s (votes %d)\n", 0, 0, "", q.Name, q.Votes)
		}
	}
	var others []quorum.NodeInfo
	for _, n := range pic.Nodes {
		if n.State != quorum.NodeMember {
			others = append(others, n)
		}
	}
	if len(others) > 0 {
		// Not in corosync-quorumtool -s: the configured and seen nodes
		// that are not members.
		fmt.Fprintf(w, "\nOther nodes\n-----------\n")
		fmt.Fprintf(w, "%10s %10s %10s %s\n", "Nodeid", "Votes", "State", "Name")
		for _, n := range others {
			fmt.Fprintf(w, "%10d %10d %10s %s\n", n.ID, n.Votes, n.State, n.Name)
		}
	}
}

// jsonPicture is the JSON form of a Picture; the field order is the output's
// key order.
type jsonPicture struct {
	Time            string       `json:"time"`
	Kind            string       `json:"kind"`
	Connected       bool         `json:"connected"`
	Syncing         bool         `json:"syncing"`
	State           string       `json:"state"`
	Quorate         bool         `json:"quorate"`
	Provider        string       `json:"provider"`
	NodeID          uint32       `json:"node_id"`
	RingID          jsonRingID   `json:"ring_id"`
	RingIDText      string       `json:"ring_id_text"`
	ExpectedVotes   uint32       `json:"expected_votes"`
	HighestExpected uint32       `json:"highest_expected"`
	TotalVotes      uint32       `json:"total_votes"`
	Quorum          uint32       `json:"quorum"`
	Flags           []string     `json:"flags"`
	Nodes           []jsonNode   `json:"nodes"`
	Qdevice         *jsonQdevice `json:"qdevice"`
	Error           string       `json:"error,omitempty"`
}

type jsonNode struct {
	ID      uint32 `json:"id"`
	Name    string `json:"name"`
	Votes   uint32 `json:"votes"`
	State   string `json:"state"`
	Local   bool   `json:"local"`
	Qdevice string `json:"qdevice"`
}

type jsonQdevice struct {
	Name       string `json:"name"`
	Votes      uint32 `json:"votes"`
	Alive      bool   `json:"alive"`
	CastVote   bool   `json:"cast_vote"`
	MasterWins bool   `json:"master_wins"`
}

func pictureJSON(pic quorum.Picture) jsonPicture {
	j := jsonPicture{
		Time:            pic.Time.UTC().Format(time.RFC3339Nano),
		Kind:            "picture",
		Connected:       pic.Connected,
		Syncing:         pic.Syncing,
		Quorate:         pic.Quorate,
		Provider:        pic.Provider,
		NodeID:          pic.NodeID,
		RingID:          jsonRingID{NodeID: pic.RingID.NodeID, Seq: pic.RingID.Seq},
		RingIDText:      pic.RingID.String(),
		ExpectedVotes:   pic.ExpectedVotes,
		HighestExpected: pic.HighestExpected,
		TotalVotes:      pic.TotalVotes,
		Quorum:          pic.Quorum,
		Flags:           strings.Fields(pic.Flags.String()),
		Nodes:           []jsonNode{},
	}
	if j.Flags == nil {
		j.Flags = []string{}
	}
	j.State = pictureState(pic)
	for _, n := range pic.Nodes {
		j.Nodes = append(j.Nodes, jsonNode{ID: n.ID, Name: n.Name, Votes: n.Votes, State: n.State.String(),
			Local: n.Local, Qdevice: n.Qdevice.String()})
	}
	if q := pic.Qdevice; q.Registered {
		j.Qdevice = &jsonQdevice{Name: q.Name, Votes: q.Votes, Alive: q.Alive, CastVote: q.CastVote, MasterWins: q.MasterWins}
	}
	if pic.Err != nil {
		j.Error = pic.Err.Error()
	}
	return j
}

// encodeJSON writes v as one JSON line (the encoder ends it with \n).
func encodeJSON(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // error texts are read by people, not embedded in HTML
	return enc.Encode(v)
}
