//go:build linux

package qbipc

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corosync-go/quorum/internal/cs"
	"golang.org/x/sys/unix"
)

// Config says what to connect to and whom to trust.
type Config struct {
	// Service is the service's socket name, such as "quorum".
	Service string
	// MaxMsgSize is the message size to ask for; 0 means DefaultMaxMsgSize.
	// The server may choose a larger one, up to 16 MiB.
	MaxMsgSize uint32
	// TrustedUIDs are the uids, besides 0, the server may run as.
	TrustedUIDs []uint32
	// ShmDir is the directory the server's shared-memory files must be
	// under; "" means /dev/shm. Names outside it are refused.
	ShmDir string
}

// Dial connects to cfg.Service and completes libqb's handshake. All its
// sockets are created on the calling goroutine's thread, so a caller locked
// to a thread in another network namespace connects to the server there.
//
// Errors carry a cs.Code: cs.ErrLibrary when nothing listens or the server
// hangs up, cs.ErrTryAgain while corosync starts, cs.ErrAccess when the
// server refuses us, cs.ErrSecurity when the server runs as an untrusted
// uid, cs.ErrNotSupported when its shared memory cannot be used here; or
// ctx.Err() when ctx ends first.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	const op = "qb_ipcc_connect"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Service == "" || strings.IndexByte(cfg.Service, 0) >= 0 {
		return nil, &cs.Error{Op: op, Code: cs.ErrInvalidParam, Err: fmt.Errorf("bad service name %q", cfg.Service)}
	}
	maxMsg := cfg.MaxMsgSize
	if maxMsg == 0 {
		maxMsg = DefaultMaxMsgSize
	}
	shmDir := cfg.ShmDir
	if shmDir == "" {
		shmDir = "/dev/shm"
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrapErr(op, fmt.Errorf("socket: %w", err))
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	raw, peer, err := handshake(ctx, fd, cfg.Service, maxMsg)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("waiting for %q to answer the connection handshake: %w", cfg.Service, err)
		}
		return nil, dialErr(op, err)
	}
	// Whom we talk to comes first: nothing an untrusted process says is
	// worth parsing.
	if peer.Uid != 0 && !slices.Contains(cfg.TrustedUIDs, peer.Uid) {
		return nil, &cs.Error{Op: op, Code: cs.ErrSecurity, Err: fmt.Errorf(
			"the process serving %q (pid %d) runs as uid %d, which is not trusted: only root is, "+
				"unless quorum.WithTrustedUIDs(%d) allows it", cfg.Service, peer.Pid, peer.Uid, peer.Uid)}
	}
	resp, err := parseConnResponse(raw)
	if err != nil {
		return nil, dialErr(op, err)
	}
	if resp.Error != 0 {
		return nil, wrapErr(op, fmt.Errorf("server refused the connection: %w", unix.Errno(-resp.Error)))
	}
	if resp.MaxMsgSize != 0 {
		if resp.MaxMsgSize > maxAcceptedMsgSize || resp.MaxMsgSize < RequestHeaderSize+64 {
			return nil, dialErr(op, fmt.Errorf("%w: server message size %d", errMalformed, resp.MaxMsgSize))
		}
		maxMsg = resp.MaxMsgSize
	}
	c := &Conn{setup: fd, typ: resp.Type, maxMsg: maxMsg, peer: peer, reqs: make(chan struct{}, 1)}
	switch resp.Type {
	case TransportSHM:
		c.tr, err = openSHM(fd, resp, maxMsg, shmDir)
	case TransportSocket:
		c.tr, err = openSocket(fd, resp, maxMsg, shmDir)
	default:
		err = &cs.Error{Op: op, Code: cs.ErrNotSupported, Err: fmt.Errorf("unknown connection type %d", resp.Type)}
	}
	if err != nil {
		var ce *cs.Error
		if errors.Is(err, ErrSemaphoreLayout) && !errors.As(err, &ce) {
			err = &cs.Error{Op: op, Code: cs.ErrNotSupported, Err: err}
		}
		return nil, dialErr(op, err)
	}
	c.files = c.tr.files()
	c.connDir = connDir(c.files, shmDir)
	ok = true
	return c, nil
}

// dialErr is wrapErr for the handshake, where a server that breaks the
// protocol will break it again on every try: that is CS_ERR_NOT_SUPPORTED,
// which nobody retries, rather than CS_ERR_LIBRARY.
func dialErr(op string, err error) error {
	var ce *cs.Error
	if errors.Is(err, errMalformed) && !errors.As(err, &ce) {
		return &cs.Error{Op: op, Code: cs.ErrNotSupported, Err: fmt.Errorf(
			"the server's libqb handshake is not one this client supports (libqb 1.0.1 to 2.0.x are): %w", err)}
	}
	return wrapErr(op, err)
}

// handshake connects fd, sends the connection request and reads the
// response with the server's credentials.
func handshake(ctx context.Context, fd int, service string, maxMsg uint32) ([]byte, unix.Ucred, error) {
	var peer unix.Ucred
	err := connectAbstract(fd, service)
	if err == unix.EAGAIN || err == unix.EINPROGRESS {
		// A full listen backlog on a non-blocking socket.
		if err = waitFd(ctx, fd, unix.POLLOUT); err == nil {
			var so int
			if so, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && so != 0 {
				err = unix.Errno(so)
			}
		}
	}
	if err != nil {
		return nil, peer, fmt.Errorf("connect to %q: %w", service, err)
	}
	// With SO_PASSCRED set before sending, the kernel attaches our
	// credentials whatever the server's timing, and attaches the server's
	// to what we receive.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, peer, fmt.Errorf("SO_PASSCRED: %w", err)
	}
	if err := sendAll(ctx, fd, encodeConnRequest(maxMsg)); err != nil {
		return nil, peer, fmt.Errorf("send connection request: %w", err)
	}
	buf := make([]byte, connResponseSize)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	got, haveCreds := 0, false
	for got < len(buf) {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf[got:], oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err == unix.EAGAIN {
			if err := waitFd(ctx, fd, unix.POLLIN); err != nil {
				return nil, peer, err
			}
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, peer, fmt.Errorf("receive connection response: %w", err)
		}
		if n == 0 {
			return nil, peer, fmt.Errorf("server closed the connection during the handshake: %w", unix.ENOTCONN)
		}
		if !haveCreds && oobn > 0 {
			if cr, err := parseCreds(oob[:oobn]); err == nil {
				peer, haveCreds = cr, true
			}
		}
		got += n
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 0)
	if !haveCreds {
		// The kernel always attaches them while SO_PASSCRED is set; their
		// absence means something odd is on the other end.
		return nil, peer, fmt.Errorf("%w: no credentials came with the connection response", errMalformed)
	}
	return buf, peer, nil
}

func parseCreds(oob []byte) (unix.Ucred, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return unix.Ucred{}, err
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_CREDENTIALS {
			cr, err := unix.ParseUnixCredentials(&m)
			if err != nil {
				return unix.Ucred{}, err
			}
			return *cr, nil
		}
	}
	return unix.Ucred{}, errors.New("no SCM_CREDENTIALS")
}

// shmPath turns a file name from the handshake into the path to open. From
// libqb 1.0.4 on, the server names absolute paths in a directory of the
// connection's own; up to 1.0.3 it names bare bases of files that lie
// directly in /dev/shm, which libqb's client opens as /dev/shm/qb-<base>.
// Either way the result is a clean path inside dir, or an error.
func shmPath(name, dir string) (string, error) {
	dir = filepath.Clean(dir)
	if !strings.Contains(name, "/") {
		if name == "" || name == "." || name == ".." || len(name) > pathMax-len(dir)-16 {
			return "", fmt.Errorf("%w: server named file %q", errMalformed, name)
		}
		return dir + "/qb-" + name, nil
	}
	if !filepath.IsAbs(name) || filepath.Clean(name) != name || !strings.HasPrefix(name, dir+"/") {
		return "", fmt.Errorf("%w: server named %q, which is not inside %s", errMalformed, name, dir)
	}
	return name, nil
}

// connDir is the directory of the connection's own that holds files (libqb
// 1.0.4 and later), or "" when they lie directly in dir (up to 1.0.3): dir
// itself is never the connection's to remove.
func connDir(files []string, dir string) string {
	if len(files) == 0 {
		return ""
	}
	d := filepath.Dir(files[0])
	if d == filepath.Clean(dir) {
		return ""
	}
	return d
}
