//go:build linux

package quorum_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/corosync-go/quorum"
)

// feed is a Backend for benchmarks of the engine alone: notifications are
// posted by the benchmark and handed to the engine through an eventfd, the
// way the simulated cluster does, minus the cluster model.
type feed struct {
	mu    sync.Mutex
	efd   int
	queue []quorum.Notification
	conns chan *feed
}

func newFeed() *feed { return &feed{conns: make(chan *feed, 1)} }

func (f *feed) Connect(context.Context, quorum.ConnectParams) (quorum.Conn, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f.efd = efd
	return f, nil
}

func (f *feed) post(ns ...quorum.Notification) {
	f.mu.Lock()
	f.queue = append(f.queue, ns...)
	f.mu.Unlock()
	one := [8]byte{1}
	unix.Write(f.efd, one[:])
}

func (f *feed) Fd() int { return f.efd }

func (f *feed) Dispatch(fn func(quorum.Notification)) error {
	var buf [8]byte
	unix.Read(f.efd, buf[:])
	f.mu.Lock()
	q := f.queue
	f.queue = f.queue[len(f.queue):]
	f.mu.Unlock()
	for _, n := range q {
		fn(n)
	}
	return nil
}

// TrackStart queues the snapshot, as corosync does.
func (f *feed) TrackStart(context.Context, quorum.TrackFlags) error {
	f.mu.Lock()
	f.queue = append(f.queue, nodelist5, quorum5)
	f.mu.Unlock()
	one := [8]byte{1}
	unix.Write(f.efd, one[:])
	return nil
}

func (f *feed) Quorate(context.Context) (bool, error) { return true, nil }
func (f *feed) Close() error                          { return unix.Close(f.efd) }

var (
	ring5     = quorum.RingID{NodeID: 1, Seq: 8}
	nodelist5 = quorum.Notification{Kind: quorum.EventNodeList, RingID: ring5, Members: all5,
		Joined: []uint32{}, Left: []uint32{}}
	quorum5 = quorum.Notification{Kind: quorum.EventQuorum, Quorate: true, RingID: ring5, Members: all5}
)

func openFeed(b *testing.B) (*feed, *quorum.Client) {
	b.Helper()
	f := newFeed()
	cl, err := quorum.Open(context.Background(), quorum.WithBackend(f))
	if err != nil {
		b.Fatal(err)
	}
	return f, cl
}

// BenchmarkEventLatency: one notification at a time, posted and then
// received by one subscriber, which waits for it: the whole path, wake-ups
// of the pump and of the reader included.
func BenchmarkEventLatency(b *testing.B) {
	f, cl := openFeed(b)
	defer cl.Close()
	ch, _ := cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(16))
	<-ch
	<-ch
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.post(quorum5)
		<-ch
	}
}

// BenchmarkEventThroughput: notifications posted in batches of 64, as
// corosync queues them when busy, and read by one lossless subscriber:
// ns/op and allocs/op are per event.
func BenchmarkEventThroughput(b *testing.B) {
	f, cl := openFeed(b)
	defer cl.Close()
	const batch = 64
	ch, _ := cl.Subscribe(context.Background(), quorum.TrackChanges, quorum.WithLossless(2*batch))
	<-ch
	<-ch
	ns := make([]quorum.Notification, batch)
	for i := range ns {
		ns[i] = []quorum.Notification{nodelist5, quorum5}[i%2]
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		f.post(ns[:n]...)
		for range n {
			<-ch
		}
		done += n
	}
}

// BenchmarkEventSim: a membership change (a node leaves or comes back) on
// the simulated cluster through to one subscriber: the simulated corosync's
// own work included. ns/op and allocs/op are per event (two per change).
func BenchmarkEventSim(b *testing.B) {
	c, _ := quorum.NewSimClusterN(5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := quorum.Subscribe(ctx, quorum.TrackChanges, quorum.WithBackend(c.Backend(1)), quorum.WithLossless(16))
	<-ch
	<-ch
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 2 {
		if i%4 == 0 {
			c.Stop(5)
		} else {
			c.Start(5)
		}
		<-ch
		<-ch
	}
	b.StopTimer()
	cancel()
	for range ch {
	}
}

// BenchmarkFanout10k: one change (a nodelist and a quorum notification)
// delivered to 10,000 subscribers of one Client, each a goroutine ranging
// over its channel; an op ends when every one of them has both events.
func BenchmarkFanout10k(b *testing.B) {
	const subs = 10000
	f, cl := openFeed(b)
	defer cl.Close()
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(subs)
	for range subs {
		ch, err := cl.Subscribe(context.Background(), quorum.TrackChanges)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			n := 0
			for ev := range ch {
				if ev.Initial {
					if n++; n == 2 {
						ready.Done()
					}
					continue
				}
				if ev.Kind == quorum.EventQuorum {
					wg.Done()
				}
			}
		}()
	}
	ready.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wg.Add(subs)
		f.post(nodelist5, quorum5)
		wg.Wait()
	}
	b.StopTimer()
}

// BenchmarkIdleSubscriberHeap: heap bytes held per subscriber of a Client
// that is waiting for events (reported as B/subscriber; ns/op is not
// meaningful here).
func BenchmarkIdleSubscriberHeap(b *testing.B) {
	const subs = 10000
	for i := 0; i < b.N; i++ {
		_, cl := openFeed(b)
		ctx, cancel := context.WithCancel(context.Background())
		chans := make([]<-chan quorum.QuorumEvent, 0, subs)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range subs {
			ch, err := cl.Subscribe(ctx, quorum.TrackChangesOnly)
			if err != nil {
				b.Fatal(err)
			}
			chans = append(chans, ch)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/subs, "B/subscriber")
		runtime.KeepAlive(chans)
		cancel()
		cl.Close()
	}
}
