package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/corosync-go/quorum"
)

// humanTime is fixed-width, in UTC, so that lines sort and align.
const humanTime = "2006-01-02T15:04:05.000Z07:00"

// printer writes one line per event, as text or JSON.
type printer struct {
	w    io.Writer
	json bool
	buf  bytes.Buffer
	// names gives node names for text lines (nil: ids alone): the
	// picture's, which the watcher keeps.
	names func() []quorum.NodeInfo
}

func newPrinter(w io.Writer, asJSON bool) *printer { return &printer{w: w, json: asJSON} }

// print writes ev as one line.
func (p *printer) print(ev quorum.QuorumEvent) error {
	return p.line(func() any { return toJSON(ev) }, func() string {
		legend := ""
		if p.names != nil {
			legend = nameLegend(p.names(), ev.Members, ev.Joined, ev.Left)
		}
		return humanLine(ev, legend)
	})
}

// line writes one record with a single Write, so that a reader of a pipe
// never sees half of one: asJSON's value as JSON with --json, else text's
// line.
func (p *printer) line(asJSON func() any, text func() string) error {
	p.buf.Reset()
	if p.json {
		if err := encodeJSON(&p.buf, asJSON()); err != nil {
			return err
		}
	} else {
		p.buf.WriteString(text())
		p.buf.WriteByte('\n')
	}
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// humanLine formats ev as
//
//	2026-11-25T10:00:00.123Z #3 nodelist ring 1.2c quorate members [1 2 3 4] joined [] left [5]
//
// with legend (the nodes' names, see nameLegend) after the lists
// (the ring id in hex, as corosync logs it) followed by " initial", " coalesced N" and " error: ..." when they apply.
// The state word is "quorate" or "inquorate" on nodelist and quorum events,
// and "unknown" on connection events, where the engine cannot know it.
func humanLine(ev quorum.QuorumEvent, legend string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s ring %s %s members %s joined %s left %s%s",
		ev.Time.UTC().Format(humanTime), ev.Seq, ev.Kind, ev.RingID,
		stateWord(ev), ids(ev.Members), ids(ev.Joined), ids(ev.Left), legend)
	if ev.Initial {
		b.WriteString(" initial")
	}
	if ev.Coalesced > 0 {
		fmt.Fprintf(&b, " coalesced %d", ev.Coalesced)
	}
	if ev.Err != nil {
		b.WriteString(" error: ")
		b.WriteString(oneLine(ev.Err.Error()))
	}
	return b.String()
}

// nameLegend names the nodes of the lists whose names are known, as
// " names 1=node1 2=node2", so that people see names wherever ids are
// shown; "" when none is known.
func nameLegend(nodes []quorum.NodeInfo, lists ...[]uint32) string {
	var b strings.Builder
	var done []uint32
	for _, l := range lists {
		for _, id := range l {
			if slices.Contains(done, id) {
				continue
			}
			done = append(done, id)
			i := slices.IndexFunc(nodes, func(n quorum.NodeInfo) bool { return n.ID == id })
			if i < 0 || nodes[i].Name == "" {
				continue
			}
			if b.Len() == 0 {
				b.WriteString(" names")
			}
			fmt.Fprintf(&b, " %d=%s", id, nodes[i].Name)
		}
	}
	return b.String()
}

func stateWord(ev quorum.QuorumEvent) string {
	switch {
	case !ev.Known():
		return "unknown"
	case ev.Quorate:
		return "quorate"
	}
	return "inquorate"
}

func ids(s []uint32) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", id)
	}
	b.WriteByte(']')
	return b.String()
}

// oneLine keeps an error message on its line, so that output stays one
// event per line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(s)
}

// jsonEvent is the --json schema; the field order is the output's key order.
type jsonEvent struct {
	Time      string     `json:"time"`
	Seq       uint64     `json:"seq"`
	Kind      string     `json:"kind"`
	Initial   bool       `json:"initial"`
	Quorate   bool       `json:"quorate"`
	State     string     `json:"state"`
	RingID    jsonRingID `json:"ring_id"`
	Members   []uint32   `json:"members"`
	Joined    []uint32   `json:"joined"`
	Left      []uint32   `json:"left"`
	Coalesced int        `json:"coalesced"`
	Error     string     `json:"error,omitempty"`
}

type jsonRingID struct {
	NodeID uint32 `json:"node_id"`
	Seq    uint64 `json:"seq"`
}

func toJSON(ev quorum.QuorumEvent) jsonEvent {
	j := jsonEvent{
		Time:      ev.Time.UTC().Format(time.RFC3339Nano),
		Seq:       ev.Seq,
		Kind:      ev.Kind.String(),
		Initial:   ev.Initial,
		Quorate:   ev.Quorate,
		State:     stateWord(ev),
		RingID:    jsonRingID{NodeID: ev.RingID.NodeID, Seq: ev.RingID.Seq},
		Members:   nonNil(ev.Members),
		Joined:    nonNil(ev.Joined),
		Left:      nonNil(ev.Left),
		Coalesced: ev.Coalesced,
	}
	if ev.Err != nil {
		j.Error = ev.Err.Error()
	}
	return j
}

// nonNil makes an empty list print as [] rather than null.
func nonNil(s []uint32) []uint32 {
	if s == nil {
		return []uint32{}
	}
	return s
}

// printError writes an error that ends quorumwatch outside the stream (it
// could not connect, say) in the stream's form: with --json an event of kind
// "error", with seq 0 since it was not delivered by a subscription.
func (p *printer) printError(t time.Time, msg string) error {
	return p.print(quorum.QuorumEvent{Time: t, Kind: quorum.EventError, Err: errors.New(msg)})
}
