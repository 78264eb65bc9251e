package quorum_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/corosync-go/quorum"
)

// contractBackend is a third-party Backend written only from what the
// Backend and Conn docs promise, to check that the engine asks no more of a
// backend than that. Its connections serve a fixed membership; a test
// drives them through the hooks.
type contractBackend struct {
	mu    sync.Mutex
	conns []*contractConn
	// requested receives a value when a Quorate request starts; it then
	// waits until answered (answer), its context ends, or Close.
	requested chan struct{}
	answer    chan bool
}

func newContractBackend() *contractBackend {
	return &contractBackend{requested: make(chan struct{}, 16), answer: make(chan bool)}
}

func (b *contractBackend) Connect(ctx context.Context, _ quorum.ConnectParams) (quorum.Conn, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &contractConn{b: b, r: r, w: w, fd: int(r.Fd()), closed: make(chan struct{})}
	b.mu.Lock()
	b.conns = append(b.conns, c)
	b.mu.Unlock()
	return c, nil
}

// last is the newest connection.
func (b *contractBackend) last() *contractConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns[len(b.conns)-1]
}

type contractConn struct {
	b      *contractBackend
	r, w   *os.File
	fd     int
	mu     sync.Mutex
	queue  []quorum.Notification
	unread int  // bytes written to w and not yet read
	lost   bool // the server hung up
	once   sync.Once
	closed chan struct{}
}

// queue adds notifications and makes the descriptor readable.
func (c *contractConn) add(ns ...quorum.Notification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, ns...)
	c.ring()
}

func (c *contractConn) ring() {
	if _, err := c.w.Write([]byte{1}); err == nil {
		c.unread++
	}
}

// hangUp plays corosync going away.
func (c *contractConn) hangUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lost = true
	c.ring()
}

func (c *contractConn) Fd() int { return c.fd }

func (c *contractConn) Dispatch(fn func(quorum.Notification)) error {
	c.mu.Lock()
	buf := make([]byte, c.unread)
	n, _ := c.r.Read(buf)
	c.unread -= n
	q, lost := c.queue, c.lost
	c.queue = nil
	c.mu.Unlock()
	for _, n := range q {
		fn(n)
	}
	if lost {
		return &quorum.Error{Op: "quorum_dispatch", Code: quorum.CodeLibrary}
	}
	return nil
}

var contractMembers = []uint32{1, 2, 3}

func (c *contractConn) TrackStart(ctx context.Context, flags quorum.TrackFlags) error {
	ring := quorum.RingID{NodeID: 1, Seq: 8}
	c.add(quorum.Notification{Kind: quorum.EventNodeList, RingID: ring, Members: contractMembers},
		quorum.Notification{Kind: quorum.EventQuorum, Quorate: true, RingID: ring, Members: contractMembers})
	return nil
}

func (c *contractConn) Quorate(ctx context.Context) (bool, error) {
	c.b.requested <- struct{}{}
	select {
	case q := <-c.b.answer:
		return q, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-c.closed:
		// What a backend says of a handle closed under a request is its
		// own business: the engine must say why.
		return false, &quorum.Error{Op: "quorum_getquorate", Code: quorum.CodeBadHandle}
	}
}

func (c *contractConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.r.Close()
		c.w.Close()
	})
	return nil
}

// TestContractBackend runs the engine on a backend written from the docs
// alone, and checks what a request cut off by Close or by a lost
// connection returns.
func TestContractBackend(t *testing.T) {
	b := newContractBackend()
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(b), fast)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ch, err := cl.Subscribe(context.Background(), quorum.TrackCurrent|quorum.TrackChanges)
	if err != nil {
		t.Fatal(err)
	}
	want(t, next(t, ch), quorum.EventNodeList, true, true, contractMembers, none, none)
	want(t, next(t, ch), quorum.EventQuorum, true, true, contractMembers, none, none)

	res := make(chan error, 1)
	go func() { q, err := cl.Quorate(context.Background()); _ = q; res <- err }()
	<-b.requested
	b.answer <- true
	if err := <-res; err != nil {
		t.Fatalf("Quorate: %v", err)
	}

	// The connection is lost while a request waits.
	go func() { _, err := cl.Quorate(context.Background()); res <- err }()
	<-b.requested
	b.last().hangUp()
	if ev := next(t, ch); ev.Kind != quorum.EventDisconnected || ev.Known() {
		t.Fatalf("after the hang-up: %v", ev)
	}
	if err := <-res; !errors.Is(err, quorum.ErrConnectionLost) || errors.Is(err, quorum.ErrBadHandle) {
		t.Fatalf("Quorate cut off by the lost connection: %v, want ErrConnectionLost only", err)
	}
	if ev := next(t, ch); ev.Kind != quorum.EventReconnected {
		t.Fatalf("got %v, want reconnected", ev)
	}
	want(t, next(t, ch), quorum.EventNodeList, true, true, contractMembers, none, none)
	want(t, next(t, ch), quorum.EventQuorum, true, true, contractMembers, none, none)

	// Close cuts off a request in flight.
	go func() { _, err := cl.Quorate(context.Background()); res <- err }()
	<-b.requested
	cl.Close()
	if err := <-res; !errors.Is(err, quorum.ErrClosed) || errors.Is(err, quorum.ErrBadHandle) {
		t.Fatalf("Quorate cut off by Close: %v, want ErrClosed only", err)
	}
	if ev := next(t, ch); ev.Kind != quorum.EventError || !errors.Is(ev.Err, quorum.ErrClosed) || ev.Quorate {
		t.Fatalf("last event %v", ev)
	}
	closed(t, ch)
}
