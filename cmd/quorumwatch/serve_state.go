package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/corosync-go/quorum"
)

// historyLen is how many changes the status page lists.
const historyLen = 20

// countBuffer is the lossless buffer of the subscription that counts
// changes: its reader only adds to counters, so it falls this far behind
// only when the process is starved.
const countBuffer = 256

// connectAttempt bounds one quorum.Open, so that the page can say what the
// last attempt met while corosync is not there yet.
const connectAttempt = 5 * time.Second

// server is quorumwatch serve's state. Requests read it and never call
// corosync: the Client's cached picture, the counters and the change log
// are kept up to date by the goroutines of watch.
type server struct {
	cfg     serveConfig
	log     *slog.Logger
	client  atomic.Pointer[quorum.Client] // nil until connected
	closing chan struct{}                 // closed at shutdown: event streams end
	failed  chan error                    // the Client failed for good (buffered, one)

	mu      sync.Mutex
	waiting error // why there is no Client yet
	counts  counters
	// The picture stream's newest value, the change log built from it, and
	// the event stream's subscribers, kept together so that a new
	// subscriber's first message and the broadcasts after it are in order.
	cur      quorum.Picture
	history  changeLog
	subs     map[*sseSub]struct{}
	msgID    uint64
	notified bool // READY=1 was sent
}

// tally is what the metrics show of the counters: comparable, so that
// the metrics' cache can tell whether any of them moved.
type tally struct {
	ringChanges       uint64
	membershipChanges uint64
	toQuorate         uint64
	toInquorate       uint64
	disconnections    uint64
	overflows         uint64
}

// counters are what the lossless QuorumEvent subscription counted.
type counters struct {
	tally

	// what the next event is compared with
	connected  bool // the last event was not a disconnection
	seen       bool // a nodelist event was seen
	ring       quorum.RingID
	members    []uint32
	quorateSet bool // quorate below is a known value
	quorate    bool
}

var errConnecting = errors.New("connecting to corosync")

func newServer(cfg serveConfig, log *slog.Logger) *server {
	s := &server{
		cfg:     cfg,
		log:     log,
		closing: make(chan struct{}),
		failed:  make(chan error, 1),
		waiting: errConnecting,
		subs:    make(map[*sseSub]struct{}),
	}
	s.cur = quorum.Picture{Err: errConnecting}
	s.history.status = verdictOf(s.cur)
	s.history.add(time.Now(), "unknown", "quorumwatch started: connecting to corosync")
	return s
}

// picture is the state a request serves: the Client's cached picture, or,
// before the first connection, an unknown one saying why.
func (s *server) picture() quorum.Picture {
	if c := s.client.Load(); c != nil {
		return c.Picture()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return quorum.Picture{Err: s.waiting}
}

// watch connects, then follows the picture and counts changes until ctx
// ends or the Client fails for good (then s.failed says why). It closes
// the Client before it returns.
func (s *server) watch(ctx context.Context, opts []quorum.OpenOption) {
	c := s.connect(ctx, opts)
	if c == nil {
		return
	}
	defer c.Close()
	s.client.Store(c)
	var wg sync.WaitGroup
	wg.Go(func() { s.followPictures(ctx, c) })
	wg.Go(func() { s.count(ctx, c) })
	wg.Wait()
}

// connect opens the Client, trying until ctx ends. Each attempt is
// bounded, so that what the last one met (corosync not running, say) is
// shown meanwhile. A refusal (access denied) ends the server.
func (s *server) connect(ctx context.Context, opts []quorum.OpenOption) *quorum.Client {
	var said string
	for {
		actx, cancel := context.WithTimeout(ctx, connectAttempt)
		c, err := quorum.Open(actx, opts...)
		cancel()
		if err == nil {
			return c
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			s.fail(err)
			return nil
		}
		why := fmt.Errorf("waiting for corosync: %s", strings.TrimPrefix(err.Error(), "quorum: "))
		if why.Error() != said {
			said = why.Error()
			s.log.Warn("corosync not reachable yet", "err", err)
		}
		s.mu.Lock()
		s.waiting = why
		s.publishLocked(quorum.Picture{Err: why})
		s.mu.Unlock()
	}
}

func (s *server) fail(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// followPictures keeps s.cur, the change log and the event streams up to
// date. The subscription coalesces: each value is the whole state, and
// the page and the log only need the newest (the counts come from count).
func (s *server) followPictures(ctx context.Context, c *quorum.Client) {
	ch, err := c.SubscribePicture(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.fail(err)
		}
		return
	}
	var last quorum.Picture
	for p := range ch {
		last = p
		s.mu.Lock()
		s.publishLocked(p)
		ready := !s.notified && p.Connected
		if ready {
			s.notified = true
		}
		s.mu.Unlock()
		if ready {
			s.log.Info("connected to corosync", "state", verdictOf(p).status, "ring", p.RingID.String())
			if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
				s.log.Warn("telling systemd", "err", err)
			}
		}
		if _, err := daemon.SdNotify(false, "STATUS="+statusLine(p)); err != nil {
			s.log.Debug("telling systemd", "err", err)
		}
	}
	if ctx.Err() == nil && last.Err != nil {
		s.fail(last.Err)
	}
}

// publishLocked makes p the current state, logs what changed and sends it
// to the event streams.
func (s *server) publishLocked(p quorum.Picture) {
	s.cur = p
	if c, ok := s.history.observe(p); ok {
		s.log.Info("change", "state", c.status, "ring", p.RingID.String(), "what", c.text)
	}
	s.broadcastLocked()
}

// statusLine sums p up for systemctl status.
func statusLine(p quorum.Picture) string {
	v := verdictOf(p)
	if v.status == "unknown" {
		return "state unknown: " + v.reason
	}
	return fmt.Sprintf("%s, %d of %d nodes members, ring %s", v.status, len(p.Members()), len(p.Nodes), p.RingID)
}

// count counts ring changes, membership changes, quorum transitions and
// disconnections. Counting needs every event, so the subscription is
// lossless: a coalescing one would merge a loss of quorum and its
// recovery into one event and the counters would miss both. Should the
// buffer ever overflow, the subscription is renewed (its snapshot is
// compared with the last state seen, so the net change is still counted)
// and the overflow is counted, so that a gap shows.
func (s *server) count(ctx context.Context, c *quorum.Client) {
	for {
		ch, err := c.Subscribe(ctx, quorum.TrackCurrent|quorum.TrackChanges, quorum.WithLossless(countBuffer))
		if err != nil {
			if ctx.Err() == nil {
				s.fail(err)
			}
			return
		}
		var end error
		for ev := range ch {
			s.mu.Lock()
			s.counts.observe(ev)
			s.mu.Unlock()
			if ev.Kind == quorum.EventError {
				end = ev.Err
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(end, quorum.ErrSlowConsumer):
			s.log.Warn("the counting subscription fell behind and is renewed; counters may have missed changes")
			continue
		case end != nil:
			s.fail(end)
		}
		return
	}
}

// observe counts ev.
func (k *counters) observe(ev quorum.QuorumEvent) {
	switch ev.Kind {
	case quorum.EventDisconnected:
		// A subscription renewed while corosync is down starts with
		// the disconnection already counted.
		if k.connected {
			k.disconnections++
		}
		k.connected = false
	case quorum.EventError:
		if errors.Is(ev.Err, quorum.ErrSlowConsumer) {
			k.overflows++
		}
	case quorum.EventNodeList:
		k.connected = true
		if k.seen {
			if ev.RingID != k.ring {
				k.ringChanges++
			}
			// Joined and Left are corosync's (or, after a reconnection,
			// what changed meanwhile); a node that restarted within one
			// ring is in both, with the members unchanged.
			if len(ev.Joined) > 0 || len(ev.Left) > 0 || !slices.Equal(ev.Members, k.members) {
				k.membershipChanges++
			}
		}
		k.seen, k.ring, k.members = true, ev.RingID, slices.Clone(ev.Members)
	case quorum.EventQuorum:
		if !ev.Known() {
			return
		}
		// A change across an outage counts too: the value known before
		// and the one known after differ.
		if k.quorateSet && ev.Quorate != k.quorate {
			if ev.Quorate {
				k.toQuorate++
			} else {
				k.toInquorate++
			}
		}
		k.quorateSet, k.quorate = true, ev.Quorate
		k.ring = ev.RingID
	}
}

// verdict is what a picture says to a health check.
type verdict struct {
	status string // quorate, inquorate or unknown
	reason string // why not quorate, or why unknown
}

func (v verdict) healthy() bool { return v.status == "quorate" }

// known reports whether p is a current, complete enough state: connected,
// and corosync answering. A re-read that failed (a frozen or overloaded
// corosync) makes the last values stale: quorate may no longer be true.
func known(p quorum.Picture) bool { return p.Connected && p.Err == nil }

func verdictOf(p quorum.Picture) verdict {
	switch {
	case !p.Connected && p.Err == nil:
		return verdict{"unknown", "corosync's state has not been read yet"}
	case !p.Connected:
		return verdict{"unknown", oneLine(strings.TrimPrefix(p.Err.Error(), "quorum: "))}
	case p.Err != nil:
		return verdict{"unknown", "corosync does not answer: " + oneLine(strings.TrimPrefix(p.Err.Error(), "quorum: "))}
	case !p.Quorate:
		return verdict{"inquorate", fmt.Sprintf("this node's partition is not quorate: %d of %d votes needed are present",
			p.TotalVotes, p.Quorum)}
	}
	return verdict{status: "quorate"}
}

// change is one entry of the change log.
type change struct {
	time   time.Time
	status string // the verdict after the change
	text   string
	ring   quorum.RingID
	open   bool // made from a Syncing value: the re-read's changes join it
}

// changeLog keeps the last changes, for people: what a picture changed
// against the one before, in words.
type changeLog struct {
	entries []change // oldest first, at most historyLen
	prev    quorum.Picture
	prevSet bool // prev holds a known picture
	status  verdict
}

func (l *changeLog) add(t time.Time, status, text string) {
	if len(l.entries) == historyLen {
		l.entries = slices.Delete(l.entries, 0, 1)
	}
	l.entries = append(l.entries, change{time: t, status: status, text: text})
}

// observe logs what p changed and returns what it added. A change of
// membership comes first as a Syncing value (ring, members, quorate) and
// then complete (votes, thresholds): the second joins the first's entry.
func (l *changeLog) observe(p quorum.Picture) (change, bool) {
	t := p.Time
	if t.IsZero() {
		t = time.Now()
	}
	v := verdictOf(p)
	var parts []string
	if v != l.status {
		switch {
		case v.status == "unknown":
			parts = append(parts, "state unknown: "+v.reason)
		case l.status.status == "unknown" && !l.prevSet:
			parts = append(parts, fmt.Sprintf("connected to corosync: %s, %d of %d nodes members, ring %s",
				quorateWord(p.Quorate), len(p.Members()), len(p.Nodes), p.RingID))
		case l.status.status == "unknown":
			parts = append(parts, fmt.Sprintf("corosync answers again: %s", quorateWord(p.Quorate)))
		case v.status != l.status.status && p.Quorate:
			parts = append(parts, "quorum regained")
		case v.status != l.status.status:
			parts = append(parts, "quorum lost")
		}
		l.status = v
	}
	if known(p) {
		if l.prevSet {
			parts = append(parts, pictureDiff(l.prev, p)...)
		}
		l.prev, l.prevSet = p, true
	}
	if len(parts) == 0 {
		return change{}, false
	}
	text := strings.Join(parts, "; ")
	if n := len(l.entries); n > 0 && known(p) {
		if last := &l.entries[n-1]; last.open && last.ring == p.RingID && last.status == v.status {
			last.text += "; " + text
			last.open = p.Syncing
			return change{time: t, status: v.status, text: text, ring: p.RingID}, true
		}
	}
	l.add(t, v.status, text)
	last := &l.entries[len(l.entries)-1]
	last.ring, last.open = p.RingID, known(p) && p.Syncing
	return *last, true
}

func quorateWord(q bool) string {
	if q {
		return "quorate"
	}
	return "not quorate"
}

// pictureDiff says what changed from a to b, both known pictures.
func pictureDiff(a, b quorum.Picture) []string {
	var out []string
	if a.RingID != b.RingID {
		out = append(out, fmt.Sprintf("new ring %s", b.RingID))
	}
	for _, n := range b.Nodes {
		o, had := a.Node(n.ID)
		switch {
		case !had:
			out = append(out, fmt.Sprintf("%s appeared (%s, %d votes)", nodeLabel(n), n.State, n.Votes))
			continue
		case o.State != n.State:
			out = append(out, fmt.Sprintf("%s %s", nodeLabel(n), stateChange(o.State, n.State)))
		}
		if o.Votes != n.Votes {
			out = append(out, fmt.Sprintf("%s votes %d → %d", nodeLabel(n), o.Votes, n.Votes))
		}
		if o.Name != n.Name && o.Name != "" {
			out = append(out, fmt.Sprintf("node %d renamed %s → %s", n.ID, o.Name, n.Name))
		}
	}
	for _, o := range a.Nodes {
		if _, ok := b.Node(o.ID); !ok {
			out = append(out, fmt.Sprintf("%s removed from the nodelist", nodeLabel(o)))
		}
	}
	for _, f := range []struct {
		name string
		a, b uint32
	}{{"expected votes", a.ExpectedVotes, b.ExpectedVotes}, {"highest expected", a.HighestExpected, b.HighestExpected},
		{"total votes", a.TotalVotes, b.TotalVotes}, {"quorum", a.Quorum, b.Quorum}} {
		if f.a != f.b {
			out = append(out, fmt.Sprintf("%s %d → %d", f.name, f.a, f.b))
		}
	}
	if a.Flags != b.Flags {
		var d []string
		for _, w := range strings.Fields((b.Flags &^ a.Flags).String()) {
			d = append(d, "+"+w)
		}
		for _, w := range strings.Fields((a.Flags &^ b.Flags).String()) {
			d = append(d, "-"+w)
		}
		out = append(out, "flags "+strings.Join(d, " "))
	}
	if a.Qdevice != b.Qdevice {
		if b.Qdevice.Registered {
			out = append(out, fmt.Sprintf("quorum device %s %s, %d votes", b.Qdevice.Name, b.Qdevice.QdeviceState, b.Qdevice.Votes))
		} else {
			out = append(out, "quorum device unregistered")
		}
	}
	if a.Provider != b.Provider {
		out = append(out, fmt.Sprintf("quorum provider %q → %q", a.Provider, b.Provider))
	}
	return out
}

func stateChange(from, to quorum.NodeState) string {
	switch {
	case to == quorum.NodeMember:
		return "joined"
	case from == quorum.NodeMember && to == quorum.NodeDead:
		return "left"
	case to == quorum.NodeLeaving:
		return "is leaving"
	}
	return fmt.Sprintf("%s → %s", from, to)
}
