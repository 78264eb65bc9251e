package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/corosync-go/quorum/internal/model"
)

// The picture's side of the pump. What corosync notifies (quorum changes on
// the quorum connection; votequorum's quorum, expected votes and nodelist
// notifications; cmap's changes to the nodelist) only marks the picture
// stale: the values come from votequorum_getinfo of this node and of every
// node known, which the pump asks for between two waits, once the
// connection's state has settled (the snapshot is complete and no change is
// half delivered). See docs/design.md, "The picture".

// defaultRefreshTimeout bounds one re-read of votequorum, so that a frozen
// corosync holds the pump (and the closing of ended channels) no longer
// than this. Tests shorten it (settings.refreshTimeout).
const defaultRefreshTimeout = 5 * time.Second

// picSession is what the pump knows of the picture on one connection. It is
// part of the session: written by the pump with the Client's mu held.
type picSession struct {
	stale     bool   // votequorum must be re-read
	cfgStale  bool   // cmap's nodelist must be re-read too
	midChange bool   // a nodelist event came and its quorum event has not
	gen       uint64 // counts notifications, so that a re-read knows it was overtaken
	cfgGen    uint64 // counts cmap's notifications alone
	failures  int    // re-reads failed in a row (frozen or busy corosync)
	retryAt   time.Time
	tickAt    time.Time // WithPictureRefresh: the next periodic re-read

	cfg   model.Config
	read  bool                      // cfg and infos were read at least once
	infos map[uint32]model.VoteInfo // getinfo per node; key 0 is this node's reply
	seen  map[uint32]model.VoteNode // votequorum's last node list
}

// connectVotes opens the votequorum and cmap side of sess and starts
// tracking there.
func (c *Client) connectVotes(ctx context.Context, sess *session) error {
	vb, ok := c.set.backend.(voteBackend)
	if !ok {
		return fmt.Errorf("%w: WithPicture needs votequorum, which only this package's backends read "+
			"(NativeBackend, LibquorumBackend, a SimCluster's Backend); %T is not one", ErrNotSupported, c.set.backend)
	}
	v, err := vb.connectVotes(ctx, ConnectParams{TrustedUIDs: c.set.trustedUIDs}, sess.conn)
	if err != nil {
		return err
	}
	sess.votes = v
	if err := v.TrackStart(ctx); err != nil {
		return err
	}
	sess.pic = picSession{stale: true, cfgStale: true}
	return nil
}

// voteNotify handles one votequorum or cmap notification, inside
// votes.Dispatch with c.mu held.
func (c *Client) voteNotify(ev model.VoteEvent) {
	p := &c.sess.pic
	p.gen++
	p.stale = true
	switch ev.Kind {
	case model.VoteQuorum:
		if p.seen == nil {
			p.seen = make(map[uint32]model.VoteNode, len(ev.Nodes))
		}
		clear(p.seen)
		for _, n := range ev.Nodes {
			if n.ID != 0 { // the qdevice's entry
				p.seen[n.ID] = n
			}
		}
	case model.ConfigChanged:
		p.cfgStale = true
		p.cfgGen++
	}
}

// viewChangedLocked follows a dispatch that changed the quorum view: the
// votes are re-read, and meanwhile subscribers get the new ring, members
// and quorate at once, marked Syncing.
func (c *Client) viewChangedLocked(sess *session, mid bool) {
	p := &sess.pic
	p.gen++
	p.stale, p.midChange = true, mid
	if c.pic.Connected {
		c.publishLocked(c.buildPictureLocked(sess))
	}
}

// picDueLocked says whether the pump should re-read votequorum now.
func (c *Client) picDueLocked(sess *session) bool {
	p := &sess.pic
	return sess.votes != nil && p.stale && !p.midChange && sess.snap == snapDone &&
		(p.retryAt.IsZero() || !time.Now().Before(p.retryAt))
}

// picDeadline is when the pump must wake up for the picture with nothing
// to read: a retry after a failed re-read, or the periodic re-read. It is
// read by the pump alone, without c.mu, as it owns sess.pic's timers.
func (c *Client) picDeadline(sess *session) time.Time {
	p := &sess.pic
	if sess.votes == nil {
		return time.Time{}
	}
	if c.set.pictureRefresh > 0 && p.tickAt.IsZero() {
		p.tickAt = time.Now().Add(c.set.pictureRefresh)
	}
	switch {
	case p.retryAt.IsZero():
		return p.tickAt
	case p.tickAt.IsZero():
		return p.retryAt
	}
	return minTime(p.retryAt, p.tickAt)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// picTimerLocked handles a wake-up by picDeadline.
func (c *Client) picTimerLocked(sess *session) {
	p := &sess.pic
	if !p.tickAt.IsZero() && !time.Now().Before(p.tickAt) {
		p.tickAt = time.Time{}
		p.stale = true
	}
}

// refreshPicture re-reads votequorum (and cmap's nodelist when it changed)
// and publishes the result. It runs on the pump without c.mu: Close, and
// the end of a subscription, cut it short. A failure that leaves the
// connection up (a frozen or busy corosync) is retried after a backoff;
// a lost connection is returned.
func (c *Client) refreshPicture(sess *session) error {
	ctx, cancel := context.WithTimeout(c.stopCtx, c.set.refreshTimeout)
	defer cancel()
	c.mu.Lock()
	c.attempt = cancel
	p := &sess.pic
	gen, cfgGen, ring, cfgStale := p.gen, p.cfgGen, c.view.ring, p.cfgStale || !p.read
	ids := c.knownIDsLocked(sess, p.cfg)
	c.mu.Unlock()

	cfg, infos, err := readVotes(ctx, sess.votes, cfgStale, p.cfg, ids)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempt = nil
	if c.life != running {
		return nil
	}
	// What came meanwhile: a new ring makes what was read suspect.
	if derr := c.dispatchLocked(sess); derr != nil {
		return derr
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrConnectionLost):
		return err
	case c.stopCtx.Err() != nil || (ctx.Err() == context.Canceled && errors.Is(err, context.Canceled)):
		return nil // Close, or a subscription ended: the loop sees to it
	default:
		// Frozen or busy: say so, keep the last values, try again later.
		p.failures++
		p.retryAt = time.Now().Add(c.backoff(p.failures - 1))
		pic := c.buildPictureLocked(sess)
		pic.Syncing, pic.Err = true, fmt.Errorf("quorum: re-reading votequorum: %w", err)
		c.publishLocked(pic)
		return nil
	}
	p.failures, p.retryAt = 0, time.Time{}
	if c.view.ring != ring {
		return nil // overtaken by a new ring: read again once it settles
	}
	p.cfg, p.infos, p.read = cfg, infos, true
	if p.gen == gen {
		p.stale = false
	}
	if p.cfgGen == cfgGen {
		p.cfgStale = false
	}
	c.publishLocked(c.buildPictureLocked(sess))
	return nil
}

// readVotes reads the configuration (when cfgStale; else it keeps cfg),
// this node's votequorum info (key 0) and that of every node in ids.
func readVotes(ctx context.Context, v voteConn, cfgStale bool, cfg model.Config, ids []uint32) (model.Config, map[uint32]model.VoteInfo, error) {
	if cfgStale {
		var err error
		if cfg, err = v.Config(ctx); err != nil {
			return cfg, nil, fromInternal(err)
		}
		for _, n := range cfg.Nodes {
			if !slices.Contains(ids, n.ID) {
				ids = append(ids, n.ID)
			}
		}
	}
	infos := make(map[uint32]model.VoteInfo, len(ids)+1)
	if cfg.Provider != votequorumProvider {
		return cfg, infos, nil
	}
	local, err := v.GetInfo(ctx, 0)
	if err != nil {
		return cfg, nil, fromInternal(err)
	}
	infos[0] = local
	infos[local.NodeID] = local
	for _, id := range ids {
		if _, ok := infos[id]; ok || id == 0 {
			continue
		}
		info, err := v.GetInfo(ctx, id)
		switch {
		case err == nil:
			infos[id] = info
		case codeOf(fromInternal(err)) == CodeNotExist:
			// A configured node votequorum has not seen.
		default:
			return cfg, nil, fromInternal(err)
		}
	}
	return cfg, infos, nil
}

// votequorumProvider is quorum.provider when votequorum is configured.
const votequorumProvider = "corosync_votequorum"

// codeOf returns the cs_error_t code of corosync's error err, 0 if none.
func codeOf(err error) Code {
	var qe *Error
	if errors.As(err, &qe) {
		return qe.Code
	}
	return 0
}

// knownIDsLocked returns every node id the picture shows: members,
// configured nodes and nodes votequorum has seen.
func (c *Client) knownIDsLocked(sess *session, cfg model.Config) []uint32 {
	ids := slices.Clone(c.view.members)
	add := func(id uint32) {
		if id != 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, n := range cfg.Nodes {
		add(n.ID)
	}
	for id := range sess.pic.seen {
		add(id)
	}
	for id := range sess.pic.infos {
		add(id)
	}
	slices.Sort(ids)
	return ids
}

// buildPictureLocked makes the picture from the session's last reads and
// the current quorum view.
func (c *Client) buildPictureLocked(sess *session) Picture {
	p := &sess.pic
	pic := Picture{
		Connected: true,
		Syncing:   p.stale,
		Provider:  p.cfg.Provider,
		RingID:    c.view.ring,
		Quorate:   c.view.quorate,
	}
	local, haveLocal := p.infos[0]
	if haveLocal {
		pic.NodeID = local.NodeID
		pic.ExpectedVotes, pic.HighestExpected = local.Expected, local.HighestExpected
		pic.TotalVotes, pic.Quorum = local.TotalVotes, local.Quorum
		pic.Flags = VoteFlags(local.Flags) & (FlagTwoNode | FlagQuorate | FlagWaitForAll |
			FlagLastManStanding | FlagAutoTieBreaker | FlagAllowDownscale | FlagQdevice)
		pic.Qdevice = Qdevice{QdeviceState: qdeviceState(local.Flags), Name: local.QdeviceName, Votes: local.QdeviceVotes}
	}
	names := make(map[uint32]model.ConfNode, len(p.cfg.Nodes))
	for _, n := range p.cfg.Nodes {
		names[n.ID] = n
	}
	for _, id := range c.knownIDsLocked(sess, p.cfg) {
		n := NodeInfo{ID: id, Name: names[id].Name, Local: haveLocal && id == local.NodeID}
		if info, ok := p.infos[id]; ok {
			n.Votes, n.State, n.Qdevice = info.Votes, NodeState(info.State), qdeviceState(info.Flags)
		} else {
			if p.cfg.Provider == votequorumProvider {
				n.Votes = max(names[id].Votes, 1) // as configured: 0 means 1
			}
			if s, ok := p.seen[id]; ok {
				n.State = NodeState(s.State)
			}
		}
		// Membership is the quorum service's, which is current even
		// while the votes are being re-read.
		switch {
		case slices.Contains(c.view.members, id):
			n.State = NodeMember
		case n.State == NodeMember:
			n.State = NodeDead
		}
		pic.Nodes = append(pic.Nodes, n)
	}
	return pic
}

func qdeviceState(flags uint32) QdeviceState {
	return QdeviceState{
		Registered: flags&model.FlagQdeviceRegistered != 0,
		Alive:      flags&model.FlagQdeviceAlive != 0,
		CastVote:   flags&model.FlagQdeviceCastVote != 0,
		MasterWins: flags&model.FlagQdeviceMasterWins != 0,
	}
}

// publishLocked makes pic the Client's picture and delivers it, unless
// nothing a reader can see changed. Its Time is now: when the engine
// learnt it.
func (c *Client) publishLocked(pic Picture) {
	if samePicture(c.pic, pic) {
		return
	}
	pic.Time = time.Now()
	c.pic = pic
	for s := range c.picSubs {
		c.pushPic(s, pic)
	}
}

// samePicture compares everything but Time.
func samePicture(a, b Picture) bool {
	return a.Connected == b.Connected && a.Syncing == b.Syncing && a.Provider == b.Provider &&
		a.NodeID == b.NodeID && a.RingID == b.RingID && a.Quorate == b.Quorate &&
		a.ExpectedVotes == b.ExpectedVotes && a.HighestExpected == b.HighestExpected &&
		a.TotalVotes == b.TotalVotes && a.Quorum == b.Quorum && a.Flags == b.Flags &&
		a.Qdevice == b.Qdevice && slices.Equal(a.Nodes, b.Nodes) && errText(a.Err) == errText(b.Err)
}

// errText compares errors by what they say: a re-read that fails again the
// same way is not news.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// picDownLocked publishes that the state is unknown.
func (c *Client) picDownLocked(err error) {
	c.publishLocked(c.pic.unknown(err))
}

// endPicsLocked ends every picture subscription with a last value carrying
// err.
func (c *Client) endPicsLocked(err error) {
	final := c.pic.unknown(err)
	for s := range c.picSubs {
		c.endPic(s, &final)
	}
}

// picSubscriber is one picture subscription. Like subscriber, its fields
// are guarded by the Client's mutex, the engine sends with that mutex held
// and never blocks, and the pump alone closes the channel, after endPic.
type picSubscriber struct {
	ch    chan Picture
	limit int  // lossless buffer size; 0 keeps the newest only
	ended bool // removed from the Client; gets no more values
	stop  func() bool
}

func newPicSubscriber(lossless int) *picSubscriber {
	n := 1
	if lossless > 0 {
		n = lossless + 1 // the last slot is for the final value
	}
	return &picSubscriber{ch: make(chan Picture, n), limit: lossless}
}

func (s *picSubscriber) closeCh() { close(s.ch) }

// pushPic delivers a copy of pic to s without ever blocking.
func (c *Client) pushPic(s *picSubscriber, pic Picture) {
	if s.ended {
		return
	}
	if s.limit > 0 && len(s.ch) >= s.limit {
		final := pic.unknown(ErrSlowConsumer)
		c.endPic(s, &final)
		return
	}
	s.send(pic.clone())
}

// send puts pic in the channel, replacing a value the reader has not taken
// when the channel is full (only a coalescing one, or the final value into
// the reserved slot, can find it so).
func (s *picSubscriber) send(pic Picture) {
	for {
		select {
		case s.ch <- pic:
			return
		default:
		}
		select {
		case <-s.ch:
		default:
		}
	}
}

// endPic removes s and delivers final (if any) as its last value.
func (c *Client) endPic(s *picSubscriber, final *Picture) {
	if s.ended {
		return
	}
	s.ended = true
	delete(c.picSubs, s)
	if s.stop != nil {
		s.stop()
	}
	if final != nil {
		s.send(final.clone())
	}
	c.retireLocked(s)
}
