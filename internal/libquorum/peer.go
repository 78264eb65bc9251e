//go:build libquorum && cgo && linux

package libquorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum/internal/cs"
)

// server is what the kernel says about the process behind a connection, and
// which of libquorum's descriptors to shut down to wake a blocked request.
type server struct {
	pid     int32 // from SO_PEERCRED; in socket mode, as the server's socket names claim it
	claimed bool  // pid comes from a name the server chose, not from the kernel
	uid     uint32
	wake    []int // shut down by Close under a blocked request
	// hangup is, in socket mode, libqb's setup stream socket: the only one
	// of the connection's sockets on which the server's exit shows (datagram
	// sockets get no hang-up). -1 when fd itself shows it, or when it could
	// not be told apart.
	hangup int
	// service is the libqb service name, "quorum", "votequorum" or "cmap":
	// its listener's name and the prefix of its library's initialize.
	service string
}

// inspect finds out who serves libquorum's descriptor fd.
func inspect(fd int, before map[uint64]bool) (server, error) {
	return inspectService(fd, before, "quorum")
}

// inspectService finds out who serves the descriptor fd of a connection to
// corosync's libqb service of that name, as inspect does for libquorum's.
//
// With corosync's default shared-memory IPC, fd is libqb's setup stream
// socket: SO_PEERCRED gives the server's pid and uid, and shutting the socket
// down fails libqb's liveness check (a poll of that socket every 2 s) under a
// blocked request.
//
// With qb_ipc_type: socket, fd is the datagram socket that receives events,
// which has no SO_PEERCRED. The uid then comes from sock_diag: the owner of
// the socket at the other end, which the server created. A blocked request
// waits on the response datagram socket, found by its peer's name, which
// shares the connection's unique base name with the event socket's peer.
//
// The setup socket, which shows the server's exit, is found in socket mode
// among the stream sockets that appeared since before (see socketInodes)
// and are connected to the server process.
func inspectService(fd int, before map[uint64]bool, service string) (server, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return server{}, fmt.Errorf("SO_TYPE on fd %d: %w", fd, err)
	}
	if typ == unix.SOCK_STREAM {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return server{}, fmt.Errorf("SO_PEERCRED on fd %d: %w", fd, err)
		}
		return server{pid: cred.Pid, uid: cred.Uid, wake: []int{fd}, hangup: -1, service: service}, nil
	}
	if typ != unix.SOCK_DGRAM {
		return server{}, fmt.Errorf("fd %d is neither a stream nor a datagram socket (SO_TYPE %d)", fd, typ)
	}

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return server{}, fmt.Errorf("fstat fd %d: %w", fd, err)
	}
	peer, err := unixDiag(uint32(st.Ino), udiagShowPeer)
	if err != nil {
		return server{}, err
	}
	peerIno, ok := peer.u32(unixDiagPeer)
	if !ok || peerIno == 0 {
		return server{}, fmt.Errorf("event socket (fd %d): %w", fd, errNoPeer)
	}
	owner, err := unixDiag(peerIno, udiagShowUID)
	if err != nil {
		return server{}, err
	}
	uid, ok := owner.u32(unixDiagUID)
	if !ok {
		return server{}, errors.New("the kernel does not report socket owners (sock_diag UNIX_DIAG_UID needs Linux 5.3)")
	}
	s := server{pid: -1, claimed: true, uid: uid, hangup: -1, service: service}

	// libqb names the server's sockets <dir>/qb-<service>-<suffix>, where dir
	// is /dev/shm/qb-<server pid>-<client pid>-<fd>-<random> (libqb 1.0.4
	// and later), or, abstract, qb-<service>-<server pid>-<client pid>-<fd>-
	// <suffix> (up to 1.0.3).
	name, err := peerName(fd)
	if err != nil {
		return server{}, err
	}
	base, ok := strings.CutSuffix(name, "-event-tx")
	if !ok {
		return server{}, fmt.Errorf("event socket's peer %q is not named like libqb's", name)
	}
	rest, ok := "", false
	if i := strings.Index(base, "/qb-"); i >= 0 {
		rest, ok = base[i+len("/qb-"):], true
	} else {
		// An abstract name, which Go prints with a leading '@'.
		rest, ok = strings.CutPrefix(strings.TrimPrefix(base, "@"), "qb-"+service+"-")
	}
	if f := strings.SplitN(rest, "-", 2); ok && len(f) == 2 {
		if pid, err := strconv.ParseInt(f[0], 10, 32); err == nil {
			s.pid = int32(pid)
		}
	}
	if r := findByPeerName(base + "-request"); r >= 0 {
		s.wake = []int{r}
	}
	if s.pid > 0 {
		s.hangup = findSetup(before, s.pid, service)
	}
	return s, nil
}

// socketInodes returns the inodes of this process's open sockets.
func socketInodes() map[uint64]bool {
	inos := map[uint64]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return inos
	}
	for _, e := range ents {
		if ino, ok := socketInode("/proc/self/fd/" + e.Name()); ok {
			inos[ino] = true
		}
	}
	return inos
}

func socketInode(path string) (uint64, bool) {
	l, err := os.Readlink(path)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(l, "socket:[")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64)
	return ino, err == nil
}

// findSetup returns the stream socket, opened since before, that is
// connected to libqb's listener of service in process pid, or -1 unless there
// is exactly one. More than one means another connection to the same server
// was being opened concurrently: then neither can be told apart.
func findSetup(before map[uint64]bool, pid int32, service string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	found := -1
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ino, ok := socketInode("/proc/self/fd/" + e.Name())
		if !ok || before[ino] {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		if n, err := peerName(fd); err != nil || n != "@"+service {
			continue
		}
		if cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil || cred.Pid != pid {
			continue
		}
		if found >= 0 {
			return -1
		}
		found = fd
	}
	return found
}

// peerName returns the abstract name fd is connected to, with its leading
// '@' and without the NUL padding that libqb's fixed address length leaves.
func peerName(fd int) (string, error) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return "", fmt.Errorf("getpeername fd %d: %w", fd, err)
	}
	su, ok := sa.(*unix.SockaddrUnix)
	if !ok {
		return "", fmt.Errorf("fd %d is not a unix socket", fd)
	}
	return strings.TrimRight(su.Name, "\x00"), nil
}

// findByPeerName returns the descriptor of this process connected to the
// given name, or -1. The name holds a random component of the connection, so
// at most one descriptor matches, and libquorum keeps it open until finalize.
func findByPeerName(name string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if n, err := peerName(fd); err == nil && n == name {
			return fd
		}
	}
	return -1
}

// CheckPeer checks that the process serving libquorum's descriptor fd runs as
// root or as one of trustedUIDs. corosync's IPC socket is an abstract name,
// which has no permissions: while corosync is down any local process can bind
// it and pose as the server, so the credentials the kernel recorded are the
// only proof of who answers.
//
// The error is a *cs.Error with Code cs.ErrSecurity naming the server's pid
// and uid and the option that would allow it.
func CheckPeer(fd int, trustedUIDs []uint32) error {
	s, err := inspect(fd, nil)
	if err != nil {
		return untrusted(err)
	}
	return s.check(trustedUIDs)
}

func (s server) check(trustedUIDs []uint32) error {
	if s.uid == 0 || slices.Contains(trustedUIDs, s.uid) {
		return nil
	}
	who := fmt.Sprintf("pid %d", s.pid)
	if s.claimed {
		who = fmt.Sprintf("pid %d by its socket names", s.pid)
	}
	return &cs.Error{Op: s.service + "_initialize", Code: cs.ErrSecurity, Err: fmt.Errorf(
		"the process answering on corosync's %s socket (%s) runs as uid %d, which is neither root "+
			"nor a trusted uid; refusing it, because any local user can bind that abstract socket while corosync "+
			"is down. If corosync really runs as uid %d, allow it with the option quorum.WithTrustedUIDs(%d)",
		s.service, who, s.uid, s.uid, s.uid)}
}

func untrusted(err error) error { return untrustedService("quorum", err) }

func untrustedService(service string, err error) error {
	if errors.Is(err, errNoPeer) {
		// The server closed the connection as it was made: corosync
		// stopping or restarting, which the engine retries.
		return &cs.Error{Op: service + "_initialize", Code: cs.ErrLibrary,
			Err: fmt.Errorf("corosync closed the %s connection as it was made: %w", service, err)}
	}
	return &cs.Error{Op: service + "_initialize", Code: cs.ErrSecurity,
		Err: fmt.Errorf("cannot tell who serves corosync's %s socket, so it cannot be trusted: %w", service, err)}
}

// errNoPeer: the connection's socket has no peer any more.
var errNoPeer = errors.New("no peer: the server closed its end")

// sock_diag for AF_UNIX, from <linux/unix_diag.h>.
const (
	udiagShowPeer = 0x04
	udiagShowUID  = 0x40
	unixDiagPeer  = 2
	unixDiagUID   = 7
)

type diagAttrs map[uint16][]byte

func (a diagAttrs) u32(typ uint16) (uint32, bool) {
	v, ok := a[typ]
	if !ok || len(v) < 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(v), true
}

// unixDiag asks the kernel about the unix socket with inode ino, in the
// network namespace of the calling thread.
func unixDiag(ino uint32, show uint32) (diagAttrs, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(s)
	// The kernel answers at once; the timeout only rules out a hang.
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("sock_diag timeout: %w", err)
	}

	const hdrLen, reqLen = unix.SizeofNlMsghdr, 24
	req := make([]byte, hdrLen+reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence number
	r := req[hdrLen:]
	r[0] = unix.AF_UNIX
	ne.PutUint32(r[4:], ^uint32(0)) // any state
	ne.PutUint32(r[8:], ino)
	ne.PutUint32(r[12:], show)
	ne.PutUint32(r[16:], ^uint32(0)) // no cookie
	ne.PutUint32(r[20:], ^uint32(0))
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag request: %w", err)
	}

	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(s, buf, 0)
	if err != nil {
		return nil, fmt.Errorf("sock_diag answer: %w", err)
	}
	msg := buf[:n]
	for len(msg) >= hdrLen {
		l := int(ne.Uint32(msg[0:]))
		typ := ne.Uint16(msg[4:])
		if l < hdrLen || l > len(msg) {
			break
		}
		body := msg[hdrLen:l]
		switch typ {
		case unix.NLMSG_ERROR:
			if len(body) >= 4 {
				if errno := -int32(ne.Uint32(body)); errno > 0 {
					return nil, fmt.Errorf("sock_diag for socket inode %d: %w", ino, unix.Errno(errno))
				}
			}
			return nil, fmt.Errorf("sock_diag for socket inode %d: no answer", ino)
		case unix.SOCK_DIAG_BY_FAMILY:
			const msgLen = 16 // struct unix_diag_msg
			if len(body) < msgLen || ne.Uint32(body[4:]) != ino {
				return nil, fmt.Errorf("sock_diag for socket inode %d: malformed answer", ino)
			}
			attrs := diagAttrs{}
			for a := body[msgLen:]; len(a) >= 4; {
				al := int(ne.Uint16(a[0:]))
				if al < 4 || al > len(a) {
					break
				}
				attrs[ne.Uint16(a[2:])] = a[4:al]
				a = a[min((al+3)&^3, len(a)):]
			}
			return attrs, nil
		}
		msg = msg[min((l+3)&^3, len(msg)):]
	}
	return nil, fmt.Errorf("sock_diag for socket inode %d: no answer", ino)
}
