//go:build libquorum && cgo && linux

package libquorum

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// Operation names of the votequorum and cmap calls, as they appear in errors.
const (
	opVoteInit         = "votequorum_initialize"
	opVoteGetInfo      = "votequorum_getinfo"
	opVoteSetExpected  = "votequorum_setexpected"
	opVoteSetVotes     = "votequorum_setvotes"
	opVoteTrackStart   = "votequorum_trackstart"
	opVoteDispatch     = "votequorum_dispatch"
	opVoteFinalize     = "votequorum_finalize"
	opCmapInit         = "cmap_initialize"
	opCmapGet          = "cmap_get"
	opCmapGetUint32    = "cmap_get_uint32"
	opCmapIterInit     = "cmap_iter_init"
	opCmapIterNext     = "cmap_iter_next"
	opCmapIterFinalize = "cmap_iter_finalize"
	opCmapTrackAdd     = "cmap_track_add"
	opCmapDispatch     = "cmap_dispatch"
	opCmapFinalize     = "cmap_finalize"
)

// votequorumProvider is the value of cmap's quorum.provider under which
// corosync runs its votequorum service.
const votequorumProvider = "corosync_votequorum"

// VoteConn is a connection to corosync's cmap service and, when votequorum
// is the configured quorum provider, to its votequorum service, through
// libcmap and libvotequorum: what the picture of the whole cluster is read
// from, beside a Conn.
//
// It keeps Conn's contract on each of its two library handles: requests are
// serialised per handle and honour their context while the C call goes on in
// the background; one request per handle may run concurrently with
// Dispatch; Close may be called at any time, more than once, and never
// waits for corosync: a C call still running is woken (see Conn.Close) and
// finalizes its handle when it returns. Errors are *cs.Error values.
type VoteConn struct {
	cmap     *ipcHandle
	vq       *ipcHandle // nil without the votequorum provider
	provider string     // quorum.provider when DialVotes ran
	v2       bool       // the server is corosync 2.x
	fds      []int

	// Which cmap trackers exist. Only requests on the cmap handle touch
	// them, and those are serialised.
	nodelistTracked, reloadTracked bool

	// What the callbacks of one Dispatch collect. Only the goroutine inside
	// Dispatch touches them.
	batch         []model.VoteEvent
	configChanged bool
	badCount      uint64
}

// The cmap keys a VoteConn reads and tracks.
const (
	keyProvider = "quorum.provider"
	// nodelistPrefix holds nodelist.node.<position>.<key> for each
	// configured node.
	nodelistPrefix = "nodelist.node."
	// reloadKey is 1 while corosync applies a configuration reload and 0
	// once the new configuration is in place, when votequorum re-reads its
	// own. corosync 2.4 and 3.0 set it as config.reload_in_progress
	// changes; 3.1 sets it around the whole reload, creates it at the first
	// one, and leaves it at 1 after a reload whose file did not parse.
	reloadKey = "config.totemconfig_reload_in_progress"
)

// DialVotes connects to corosync's cmap service, reads quorum.provider and,
// only when it is "corosync_votequorum", connects to the votequorum service as
// well. Like Dial, it checks that each server runs as root or as one of
// trustedUIDs, connects from the network namespace of the calling thread,
// and returns an error wrapping ctx.Err() when ctx ends first, leaving the
// attempt to finish and release what it opened in the background.
//
// Without the votequorum provider, GetInfo, SetExpected and SetVotes return
// a *cs.Error with Code cs.ErrNotSupported, and TrackStart tracks cmap only.
func DialVotes(ctx context.Context, trustedUIDs []uint32) (*VoteConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(opCmapInit, err)
	}
	vc := &VoteConn{}
	if ctx.Done() == nil {
		if err := vc.initialize(trustedUIDs); err != nil {
			return nil, err
		}
		return vc, nil
	}

	ns, nsErr := callerNetns()
	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan error, 1)
	)
	go func() {
		err := nsErr
		if err == nil {
			err = ns.enter()
			var ce *cs.Error
			if errors.As(err, &ce) {
				ce.Op = opCmapInit
			}
		}
		if err == nil {
			err = vc.initialize(trustedUIDs)
		}
		ns.close()
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil {
				vc.release()
			}
			return
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return vc, nil
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		abandoned = true
		select {
		case err := <-done:
			// It finished as the context ended; honour the context.
			if err == nil {
				vc.release()
			}
		default:
		}
		return nil, ctxError(opCmapInit, ctx.Err())
	}
}

// initialize opens the handles. It runs on a thread in the caller's network
// namespace. On error nothing is left open.
func (vc *VoteConn) initialize(trustedUIDs []uint32) error {
	cm, err := openHandle("cmap", vc, trustedUIDs, func(uintptr) (uint64, int, int32) { return cCmapInit() }, cmapFinalize)
	if err != nil {
		return err
	}
	provider, err := cmapString(cm.h, keyProvider)
	var ce *cs.Error
	if errors.As(err, &ce) && ce.Code == cs.ErrNotExist {
		provider, err = "", nil
	}
	var v2 bool
	if err == nil {
		v2, err = isCorosync2(cm.h)
	}
	if err != nil {
		cm.finalize()
		return err
	}
	var vq *ipcHandle
	if provider == votequorumProvider {
		vq, err = openHandle("votequorum", vc, trustedUIDs, cVoteInit, cVoteFinalize)
		if err != nil {
			cm.finalize()
			return err
		}
	}
	vc.cmap, vc.vq, vc.provider, vc.v2 = cm, vq, provider, v2
	vc.fds = []int{cm.pollable()}
	if vq != nil {
		vc.fds = append(vc.fds, vq.pollable())
	}
	return nil
}

// release finalizes the handles of a VoteConn nobody holds.
func (vc *VoteConn) release() {
	if vc.vq != nil {
		vc.vq.finalize()
	}
	vc.cmap.finalize()
}

// Fds returns the descriptors that are readable when notifications are
// queued or corosync hung up: cmap's, then votequorum's when there is a
// votequorum connection. As with Conn.Fd, each is the library's own (shared
// memory) or an epoll set of the VoteConn's (socket IPC), valid until Close
// and not to be read, closed or changed. The slice is the caller's.
func (vc *VoteConn) Fds() []int {
	return append([]int(nil), vc.fds...)
}

// Dispatch runs votequorum_dispatch and cmap_dispatch (CS_DISPATCH_ALL, so
// neither waits) and then hands fn, after the C calls returned, votequorum's
// notifications in corosync's order followed by a single model.ConfigChanged
// if cmap reported any change to the nodelist or the end of a configuration
// reload in that call: each says only that Config should be read again, so
// several in a row say no more than one. A change of the reload marker to 1
// is not reported; its return to 0 is.
//
// Once corosync is gone it returns a *cs.Error with Code cs.ErrLibrary, after
// handing over what was dispatched before.
func (vc *VoteConn) Dispatch(fn func(model.VoteEvent)) error {
	vc.batch, vc.badCount, vc.configChanged = vc.batch[:0], 0, false
	var err error
	if vc.vq != nil {
		err = vc.vq.dispatch(opVoteDispatch, cVoteDispatchAll)
	}
	if e := vc.cmap.dispatch(opCmapDispatch, cCmapDispatchAll); err == nil {
		err = e
	}
	batch := vc.batch
	vc.batch = nil
	if vc.configChanged {
		batch = append(batch, model.VoteEvent{Kind: model.ConfigChanged})
	}
	for _, ev := range batch {
		fn(ev)
	}
	clear(batch)
	vc.batch = batch[:0]
	if vc.badCount != 0 && err == nil {
		return &cs.Error{Op: opVoteDispatch, Code: cs.ErrMessageError, Err: fmt.Errorf(
			"corosync sent a notification with %d list entries, more than fit in a message; it was dropped", vc.badCount)}
	}
	return err
}

// TrackStart adds cmap trackers on the nodelist.node. prefix and on the
// reload marker (once per VoteConn), then, with votequorum, calls
// votequorum_trackstart with CS_TRACK_CHANGES, which queues a nodelist and a
// quorum notification as its snapshot. A second TrackStart returns
// votequorum's CS_ERR_EXIST, with the snapshot queued all the same; without
// votequorum it returns nil, the trackers being in place.
func (vc *VoteConn) TrackStart(ctx context.Context) error {
	self := uintptr(vc.cmap.self)
	err := vc.cmap.request(ctx, opCmapTrackAdd, func(h uint64) error {
		if !vc.nodelistTracked {
			rc := cCmapTrack(h, nodelistPrefix, cmapTrackAdd|cmapTrackDelete|cmapTrackModify|cmapTrackPrefix, false, self)
			if err := codeError(opCmapTrackAdd, rc); err != nil {
				return err
			}
			vc.nodelistTracked = true
		}
		if !vc.reloadTracked {
			rc := cCmapTrack(h, reloadKey, cmapTrackAdd|cmapTrackDelete|cmapTrackModify, true, self)
			if err := codeError(opCmapTrackAdd, rc); err != nil {
				return err
			}
			vc.reloadTracked = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if vc.vq == nil {
		return nil
	}
	return vc.vq.request(ctx, opVoteTrackStart, func(h uint64) error {
		return codeError(opVoteTrackStart, cVoteTrackStart(h, trackChangesFlag))
	})
}

// Config reads quorum.provider and the configured nodelist from cmap (see
// model.Config and model.ConfNode), sorted by id. A node's name is as
// corosync-quorumtool shows it: on corosync 2.x its ring0_addr (that
// quorumtool reads no other key), later its name key, else its ring0_addr
// (where quorumtool resolves the node's first address instead). Nodes
// without a UINT32 nodeid are left out, as corosync's tools leave them out;
// a quorum_votes that is not a UINT32 counts as not set.
func (vc *VoteConn) Config(ctx context.Context) (model.Config, error) {
	var cfg model.Config
	err := vc.cmap.request(ctx, opCmapGet, func(h uint64) error {
		var err error
		cfg, err = readConfig(h, vc.v2)
		return err
	})
	if err != nil {
		return model.Config{}, err
	}
	return cfg, nil
}

// GetInfo is votequorum_getinfo of nodeID (0: this node). An unknown node
// gives CS_ERR_NOT_EXIST.
func (vc *VoteConn) GetInfo(ctx context.Context, nodeID uint32) (model.VoteInfo, error) {
	if vc.vq == nil {
		return model.VoteInfo{}, vc.noVotequorum(opVoteGetInfo)
	}
	var info model.VoteInfo
	err := vc.vq.request(ctx, opVoteGetInfo, func(h uint64) error {
		var rc int32
		info, rc = cVoteGetInfo(h, nodeID)
		return codeError(opVoteGetInfo, rc)
	})
	if err != nil {
		return model.VoteInfo{}, err
	}
	return info, nil
}

// SetExpected is votequorum_setexpected: corosync refuses with
// CS_ERR_INVALID_PARAM a value below the total votes or one that would make
// a quorate partition inquorate.
func (vc *VoteConn) SetExpected(ctx context.Context, expected uint32) error {
	if vc.vq == nil {
		return vc.noVotequorum(opVoteSetExpected)
	}
	return vc.vq.request(ctx, opVoteSetExpected, func(h uint64) error {
		return codeError(opVoteSetExpected, cVoteSetExpected(h, expected))
	})
}

// SetVotes is votequorum_setvotes. Node 0 is the quorum device here, not
// this node as for GetInfo; an unknown node gives CS_ERR_NAME_NOT_FOUND, and
// votes that would put the quorum below half the total or above it give
// CS_ERR_INVALID_PARAM.
func (vc *VoteConn) SetVotes(ctx context.Context, nodeID, votes uint32) error {
	if vc.vq == nil {
		return vc.noVotequorum(opVoteSetVotes)
	}
	return vc.vq.request(ctx, opVoteSetVotes, func(h uint64) error {
		return codeError(opVoteSetVotes, cVoteSetVotes(h, nodeID, votes))
	})
}

func (vc *VoteConn) noVotequorum(op string) error {
	what := "quorum.provider is not set"
	if vc.provider != "" {
		what = fmt.Sprintf("quorum.provider is %q", vc.provider)
	}
	return &cs.Error{Op: op, Code: cs.ErrNotSupported, Err: fmt.Errorf(
		"no votequorum provider is configured (%s), so corosync has no votequorum service", what)}
}

// Close releases both handles as Conn.Close releases its one: at once when
// no C call runs on a handle, else by waking that call, which then
// finalizes the handle. Close never waits for corosync and is idempotent.
func (vc *VoteConn) Close() error {
	var err error
	if vc.vq != nil {
		err = vc.vq.close(opVoteFinalize)
	}
	if e := vc.cmap.close(opCmapFinalize); err == nil {
		err = e
	}
	return err
}

// cmapFinalizeMu serialises cmap_finalize across the process: it walks
// libcmap's global table of trackers with that table's one shared iterator.
var cmapFinalizeMu sync.Mutex

func cmapFinalize(h uint64) int32 {
	cmapFinalizeMu.Lock()
	defer cmapFinalizeMu.Unlock()
	return cCmapFinalize(h)
}

// ipcHandle is one libcmap or libvotequorum handle with the life cycle that
// Conn gives its libquorum handle: a one-token semaphore for requests, a
// count of C calls in progress, and finalize run by whoever leaves last
// after Close.
type ipcHandle struct {
	h      uint64 // cmap_handle_t or votequorum_handle_t, immutable after open
	fd     int    // the library's; never closed or modified here
	wake   []int  // shut down by close under a blocked call
	hangup int    // socket mode: libqb's setup socket; else -1
	pollFd int    // socket mode: the epoll set of event and setup sockets; else -1
	fin    func(uint64) int32
	// self is the owner's cgo.Handle given to the library as context;
	// deleted at finalize, when no callback can run any more.
	self cgo.Handle

	reqs chan struct{}

	mu        sync.Mutex
	active    int
	closed    bool
	finalized bool
}

// openHandle connects with init, which gets the context for the callbacks
// and returns the handle and the library's descriptor, and checks the
// server as Dial does. service is libqb's name of the service.
func openHandle(service string, owner *VoteConn, trustedUIDs []uint32,
	init func(ctx uintptr) (uint64, int, int32), fin func(uint64) int32) (*ipcHandle, error) {
	p := &ipcHandle{fd: -1, hangup: -1, pollFd: -1, fin: fin, reqs: make(chan struct{}, 1)}
	p.self = cgo.NewHandle(owner)
	op := service + "_initialize"
	before := socketInodes()
	h, fd, rc := init(uintptr(p.self))
	if err := initError(op, rc); err != nil {
		p.self.Delete()
		return nil, err
	}
	s, err := inspectService(fd, before, service)
	if err != nil {
		err = untrustedService(service, err)
	} else if err = s.check(trustedUIDs); err == nil && s.hangup >= 0 {
		p.pollFd, err = pollSet(op, fd, s.hangup)
	}
	if err != nil {
		fin(h)
		p.self.Delete()
		return nil, err
	}
	p.h, p.fd, p.wake, p.hangup = h, fd, s.wake, s.hangup
	return p, nil
}

func (p *ipcHandle) pollable() int {
	if p.pollFd >= 0 {
		return p.pollFd
	}
	return p.fd
}

// dispatch runs one dispatch call, reporting in socket mode the setup
// socket's hang-up as CS_ERR_LIBRARY, as Conn.Dispatch does.
func (p *ipcHandle) dispatch(op string, call func(uint64) int32) error {
	if !p.enter() {
		return closedError(op)
	}
	rc := call(p.h)
	if cs.Code(rc) == cs.OK && p.hangup >= 0 && hungUp(p.hangup) {
		rc = int32(cs.ErrLibrary)
	}
	p.leave()
	return codeError(op, rc)
}

// request runs call, which may make several C calls on the handle, without
// making the caller wait past ctx; op names the request in the errors of
// the context and of a closed handle.
func (p *ipcHandle) request(ctx context.Context, op string, call func(h uint64) error) error {
	if err := ctx.Err(); err != nil {
		return ctxError(op, err)
	}
	select {
	case p.reqs <- struct{}{}:
	case <-ctx.Done():
		return ctxError(op, ctx.Err())
	}
	if !p.enter() {
		<-p.reqs
		return closedError(op)
	}
	if ctx.Done() == nil {
		err := call(p.h)
		p.leave()
		<-p.reqs
		return err
	}
	done := make(chan error, 1)
	go func() {
		err := call(p.h)
		p.leave()
		<-p.reqs
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctxError(op, ctx.Err())
	}
}

func (p *ipcHandle) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active++
	return true
}

func (p *ipcHandle) leave() {
	p.mu.Lock()
	p.active--
	fin := p.closed && p.active == 0 && !p.finalized
	if fin {
		p.finalized = true
	}
	p.mu.Unlock()
	if fin {
		p.finalize()
	}
}

func (p *ipcHandle) finalize() int32 {
	rc := p.fin(p.h)
	p.self.Delete()
	if p.pollFd >= 0 {
		unix.Close(p.pollFd)
	}
	return rc
}

func (p *ipcHandle) close(op string) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.active > 0 {
		var err error
		for _, fd := range p.wake {
			if e := unix.Shutdown(fd, unix.SHUT_RDWR); e != nil && !errors.Is(e, unix.ENOTCONN) {
				err = &cs.Error{Op: op, Code: cs.ErrLibrary,
					Err: fmt.Errorf("shutting down the socket under a blocked call: %w", e)}
			}
		}
		p.mu.Unlock()
		return err
	}
	p.finalized = true
	p.mu.Unlock()
	return codeError(op, p.finalize())
}
