//go:build linux

// Package qbipctest is an in-process fake libqb IPC server for tests of
// internal/qbipc and its users: it listens on an abstract socket, answers
// the handshake, creates the server half of the SHM rings (or the SOCKET
// transport's control file and datagram sockets) in a directory of the
// test's, and lets the test read requests, send responses and events, and
// corrupt or break everything in between.
package qbipctest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Options configure a Server. The zero value serves SHM with 1 MiB
// messages from a temporary directory.
type Options struct {
	// Socket selects the SOCKET transport instead of SHM.
	Socket bool
	// MaxMsgSize is announced in the handshake; 0 means 1 MiB.
	MaxMsgSize uint32
	// DataBytes overrides the size of each ring's data file (a multiple
	// of 4), for wrap-around tests; 0 derives it from MaxMsgSize as libqb
	// does.
	DataBytes int
	// Refuse, if not 0, is the negative errno sent in the handshake's
	// error field instead of accepting.
	Refuse int32
	// PeerUID, if set, is the uid the server claims in its credentials
	// (root may claim any).
	PeerUID *uint32
	// PeerPID, if not 0, is the pid the server claims in its credentials
	// (root may claim any live process).
	PeerPID int32
	// ConnectionType, if set, overrides the announced transport.
	ConnectionType *int32
	// MangleResponse, if set, edits the 12328-byte handshake response
	// before it is sent.
	MangleResponse func([]byte)
	// Silent makes the server accept connections and never answer the
	// handshake (a hung server).
	Silent bool
	// BeforeRespond, if set, runs on an accepted connection after its
	// files exist and before the handshake response is sent.
	BeforeRespond func(*Conn)
	// FlatNames lays a connection's files out as libqb up to 1.0.3 does:
	// directly in Server.Dir rather than in a directory of their own, and
	// named in the handshake by bare bases (SHM: "<service>-request-<id>",
	// whose files are Dir/qb-<base>-header and -data) or, for SOCKET, by an
	// absolute control file and a bare socket base.
	FlatNames bool
	// RequestIDs, if not 0, is how many request ids the service has. A
	// request with any other id fails the test and hangs up, because
	// corosync 2.x looks its handler up without a range check and dies of
	// SIGSEGV on one.
	RequestIDs int32
}

// Server listens for connections until the test ends.
type Server struct {
	// Service is the unique abstract socket name clients dial.
	Service string
	// Dir holds the connections' files; clients need it as ShmDir.
	Dir    string
	opts   Options
	tb     testing.TB
	lfd    int
	conns  chan *Conn
	silent []int // accepted and never answered, closed at stop
	wg     sync.WaitGroup
	quit   chan struct{}
}

// Start starts a server whose service name is unique to this test, and
// stops it (and every connection) in the test's cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.MaxMsgSize == 0 {
		opts.MaxMsgSize = 1 << 20
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	s := &Server{
		Service: "qbipctest-" + hex.EncodeToString(rnd[:]),
		Dir:     shortDir(tb),
		opts:    opts,
		tb:      tb,
		conns:   make(chan *Conn, 16),
		quit:    make(chan struct{}),
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if err := bindAbstract(fd, s.Service); err != nil {
		unix.Close(fd)
		tb.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		tb.Fatal(err)
	}
	s.lfd = fd
	s.wg.Add(1)
	go s.accept(tb)
	tb.Cleanup(s.stop)
	return s
}

// sunNameMax is the longest abstract socket name libqb makes: it cuts a
// longer one there, and so does this package's bindAbstract.
const sunNameMax = 106

// shortDir makes the directory for a server's connection files, removed in
// the test's cleanup. Its name is short because SOCKET connections name
// their sockets after it ("<dir>/qb-<id>/qb-test-event-tx"), cut to
// sunNameMax bytes: under tb.TempDir, named after the test inside $TMPDIR, a
// long test name or $TMPDIR made "-event" and "-event-tx" (or "-request" and
// "-response") the same name, and the client's bind failed with EADDRINUSE.
func shortDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "qbt")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (s *Server) stop() {
	close(s.quit)
	s.wg.Wait()
	unix.Close(s.lfd)
	for _, fd := range s.silent {
		unix.Close(fd)
	}
	for {
		select {
		case c := <-s.conns:
			c.Close()
		default:
			return
		}
	}
}

func (s *Server) accept(tb testing.TB) {
	defer s.wg.Done()
	for {
		pfd := []unix.PollFd{{Fd: int32(s.lfd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 20); n <= 0 {
			select {
			case <-s.quit:
				return
			default:
				continue
			}
		}
		fd, _, err := unix.Accept4(s.lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			continue
		}
		if s.opts.Silent {
			s.silent = append(s.silent, fd)
			continue
		}
		c, err := s.handshake(fd)
		if err != nil {
			tb.Logf("qbipctest: handshake: %v", err)
			unix.Close(fd)
			continue
		}
		if c != nil {
			s.conns <- c
		}
	}
}

// Next returns the next accepted connection, failing the test after 5 s.
func (s *Server) Next(tb testing.TB) *Conn {
	tb.Helper()
	select {
	case c := <-s.conns:
		tb.Cleanup(c.Close)
		return c
	case <-time.After(5 * time.Second):
		tb.Fatal("qbipctest: no connection within 5 s")
		return nil
	}
}

// Conn is the server side of one connection.
type Conn struct {
	// Setup is the accepted stream socket.
	Setup int
	// Dir is the connection's directory (removed on Close), or with
	// FlatNames the server's, which holds the connection's files.
	Dir string
	// Request, Response and Event are the SHM rings (nil for SOCKET).
	Request, Response, Event *Ring
	// ClientMaxMsgSize is what the client asked for.
	ClientMaxMsgSize uint32

	ctl             []byte
	reqSock, evSock int
	respTo, evTo    string
	flat            bool
	id              string   // names the connection's files
	created         []string // with flat, the files to remove on Close
	server          *Server
	closeOnce       sync.Once
}

func (s *Server) handshake(fd int) (*Conn, error) {
	var req [24]byte
	if err := readFull(fd, req[:], 5*time.Second); err != nil {
		return nil, err
	}
	if id := int32(binary.NativeEndian.Uint32(req[0:])); id != -1 {
		return nil, fmt.Errorf("connection request id %d", id)
	}
	resp := make([]byte, 12328)
	le := binary.NativeEndian
	le.PutUint32(resp[0:], 0xFFFFFFFF)
	le.PutUint32(resp[8:], 12328)
	var c *Conn
	if s.opts.Refuse != 0 {
		le.PutUint32(resp[16:], uint32(s.opts.Refuse))
	} else {
		var rnd [4]byte
		_, _ = rand.Read(rnd[:])
		c = &Conn{Setup: fd, Dir: filepath.Join(s.Dir, "qb-"+hex.EncodeToString(rnd[:])),
			ClientMaxMsgSize: le.Uint32(req[16:]), reqSock: -1, evSock: -1,
			flat: s.opts.FlatNames, id: hex.EncodeToString(rnd[:]), server: s}
		if c.flat {
			c.Dir = s.Dir
		} else if err := os.Mkdir(c.Dir, 0o700); err != nil {
			return nil, err
		}
		typ := int32(1)
		if s.opts.Socket {
			typ = 0
		}
		var names [3]string
		var err error
		if s.opts.Socket {
			names, err = c.setupSocket(s.opts, s.Service)
		} else {
			names, err = c.setupSHM(s.opts, s.Service)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		if s.opts.ConnectionType != nil {
			typ = *s.opts.ConnectionType
		}
		le.PutUint32(resp[24:], uint32(typ))
		le.PutUint32(resp[28:], s.opts.MaxMsgSize)
		off := 32 + int(unsafe.Sizeof(uintptr(0)))
		for i, n := range names {
			copy(resp[off+i*4096:off+i*4096+4095], n)
		}
	}
	if c != nil && s.opts.BeforeRespond != nil {
		s.opts.BeforeRespond(c)
	}
	if s.opts.MangleResponse != nil {
		s.opts.MangleResponse(resp)
	}
	var oob []byte
	if s.opts.PeerUID != nil || s.opts.PeerPID != 0 {
		cr := unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}
		if s.opts.PeerUID != nil {
			cr.Uid, cr.Gid = *s.opts.PeerUID, *s.opts.PeerUID
		}
		if s.opts.PeerPID != 0 {
			cr.Pid = s.opts.PeerPID
		}
		oob = unix.UnixCredentials(&cr)
	}
	if err := unix.Sendmsg(fd, resp, oob, nil, unix.MSG_NOSIGNAL); err != nil {
		if c != nil {
			c.Close()
		}
		return nil, err
	}
	if c == nil {
		unix.Close(fd)
	}
	return c, nil
}

func (c *Conn) setupSHM(o Options, service string) ([3]string, error) {
	data := o.DataBytes
	if data == 0 {
		page := os.Getpagesize()
		data = (int(o.MaxMsgSize) + 13 + page - 1) / page * page
	}
	names := [3]string{c.Dir + "/qb-request-test", c.Dir + "/qb-response-test", c.Dir + "/qb-event-test"}
	bases := names
	if c.flat {
		for i, dir := range []string{"request", "response", "event"} {
			names[i] = service + "-" + dir + "-" + c.id
			bases[i] = c.Dir + "/qb-" + names[i]
			c.created = append(c.created, bases[i]+"-header", bases[i]+"-data")
		}
	}
	var err error
	if c.Request, err = createRing(bases[0], data, 4); err != nil {
		return names, err
	}
	if c.Response, err = createRing(bases[1], data, 0); err != nil {
		return names, err
	}
	if c.Event, err = createRing(bases[2], data, 0); err != nil {
		return names, err
	}
	return names, nil
}

func (c *Conn) setupSocket(o Options, service string) ([3]string, error) {
	ctlPath := c.Dir + "/qb-control-test"
	base := c.Dir + "/qb-test"
	if c.flat {
		ctlPath = c.Dir + "/qb-" + service + "-control-" + c.id
		base = "qb-" + service + "-" + c.id
		c.created = append(c.created, ctlPath)
	}
	// A cut name would be another socket's: fail here rather than with
	// the client's EADDRINUSE.
	if n := len(base + "-response"); n > sunNameMax {
		return [3]string{}, fmt.Errorf("socket names %s-* are %d bytes, over libqb's %d: $TMPDIR is too long", base, n, sunNameMax)
	}
	var err error
	if c.ctl, err = createMapped(ctlPath, 24); err != nil {
		return [3]string{}, err
	}
	if c.reqSock, err = dgramBind(base + "-request"); err != nil {
		return [3]string{}, err
	}
	if c.evSock, err = dgramBind(base + "-event-tx"); err != nil {
		return [3]string{}, err
	}
	c.respTo, c.evTo = base+"-response", base+"-event"
	return [3]string{ctlPath, base, base}, nil
}

// ReadRequest returns the next request, waiting up to d: for SHM it reads
// the doorbell byte and then the request ring, for SOCKET one datagram.
func (c *Conn) ReadRequest(d time.Duration) ([]byte, error) {
	msg, err := c.readRequest(d)
	if err != nil {
		return nil, err
	}
	if n := c.server.opts.RequestIDs; n != 0 {
		id := int32(-1)
		if len(msg) >= 4 {
			id = int32(binary.NativeEndian.Uint32(msg))
		}
		if id < 0 || id >= n {
			c.server.tb.Errorf("qbipctest: %s request id %d: the service has ids 0-%d only, and corosync 2.x "+
				"would have died of SIGSEGV on this one", c.server.Service, id, n-1)
			c.HangUp()
			return nil, fmt.Errorf("qbipctest: unknown request id %d", id)
		}
	}
	return msg, nil
}

func (c *Conn) readRequest(d time.Duration) ([]byte, error) {
	if c.ctl != nil {
		if err := WaitReadable(c.reqSock, d); err != nil {
			return nil, err
		}
		buf := make([]byte, 1<<21)
		n, _, err := unix.Recvfrom(c.reqSock, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return nil, err
		}
		atomic32Add(c.ctl, 0, -1)
		return buf[:n], nil
	}
	var b [1]byte
	if err := readFull(c.Setup, b[:], d); err != nil {
		return nil, fmt.Errorf("doorbell: %w", err)
	}
	msg, ok, err := c.Request.Read()
	if err == nil && !ok {
		err = errors.New("qbipctest: doorbell rang but the request ring is empty")
	}
	return msg, err
}

// Respond sends msg on the response channel.
func (c *Conn) Respond(msg []byte) error {
	if c.ctl != nil {
		atomic32Add(c.ctl, 8, 1)
		return sendTo(c.reqSock, msg, c.respTo)
	}
	return c.Response.Write(msg)
}

// SendEvent queues msg as an event and, for SHM, rings the doorbell.
func (c *Conn) SendEvent(msg []byte) error {
	if c.ctl != nil {
		atomic32Add(c.ctl, 16, 1)
		return sendTo(c.evSock, msg, c.evTo)
	}
	if err := c.Event.Write(msg); err != nil {
		return err
	}
	return c.Doorbell()
}

// Doorbell sends one event notification byte on the setup socket.
func (c *Conn) Doorbell() error {
	_, err := unix.Write(c.Setup, []byte{0})
	return err
}

// SetFlowControl sets the request direction's flow-control flag.
func (c *Conn) SetFlowControl(v int32) {
	if c.ctl != nil {
		atomic32Store(c.ctl, 4, v)
		return
	}
	c.Request.SetUserData(v)
}

// HangUp closes the setup socket, as a dying server would.
func (c *Conn) HangUp() { _ = unix.Shutdown(c.Setup, unix.SHUT_RDWR) }

// Close releases everything and removes the connection's directory.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		unix.Close(c.Setup)
		for _, r := range []*Ring{c.Request, c.Response, c.Event} {
			if r != nil {
				r.unmap()
			}
		}
		if c.ctl != nil {
			_ = unix.Munmap(c.ctl)
		}
		for _, fd := range []int{c.reqSock, c.evSock} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		if !c.flat {
			_ = os.RemoveAll(c.Dir)
		}
		for _, f := range c.created {
			_ = os.Remove(f)
		}
	})
}

func readFull(fd int, b []byte, d time.Duration) error {
	deadline := time.Now().Add(d)
	for got := 0; got < len(b); {
		if err := WaitReadable(fd, time.Until(deadline)); err != nil {
			return err
		}
		n, err := unix.Read(fd, b[got:])
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("qbipctest: peer closed")
		}
		got += n
	}
	return nil
}

// WaitReadable waits at most d for fd to poll readable (or hung up). It
// returns context.DeadlineExceeded when d passes first, and it restarts
// poll(2) on EINTR: the Go runtime preempts with SIGURG, so an interrupted
// poll is routine and must not read as a failure.
func WaitReadable(fd int, d time.Duration) error {
	deadline := time.Now().Add(d)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		left := max(time.Until(deadline), 0)
		n, err := unix.Poll(pfd, int(left/time.Millisecond))
		// The Go runtime preempts with SIGURG, so poll(2) returning
		// EINTR is routine, not a failure of the peer.
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return context.DeadlineExceeded
		}
		return nil
	}
}
