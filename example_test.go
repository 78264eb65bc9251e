package quorum_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/corosync-go/quorum"
)

// A service ranges over the channel and acts on each event: every event
// carries the whole view, so there is no state to rebuild. Here the cluster
// is simulated; on a real node, leave out WithBackend.
func ExampleSubscribe() {
	cluster, _ := quorum.NewSimClusterN(3)
	events, err := quorum.Subscribe(context.Background(), quorum.TrackCurrent,
		quorum.WithBackend(cluster.Backend(1)))
	if err != nil {
		log.Fatal(err)
	}
	for ev := range events { // TrackCurrent alone: the snapshot, then the channel closes
		fmt.Println(ev.Kind, ev.Quorate, ev.Members)
	}
	// Output:
	// nodelist true [1 2 3]
	// quorum true [1 2 3]
}

// A watcher in a test: cancelling the context stops it and closes the
// channel, with no error event and nothing left running.
func ExampleSubscribe_cancel() {
	cluster, _ := quorum.NewSimClusterN(5)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := quorum.Subscribe(ctx, quorum.TrackChanges,
		quorum.WithBackend(cluster.Backend(1)), quorum.WithLossless(16))
	if err != nil {
		log.Fatal(err)
	}
	<-events // the snapshot: nodelist,
	<-events // then quorum

	cluster.Stop(5)
	cluster.Stop(4)
	for range 4 {
		ev := <-events
		fmt.Printf("%s quorate=%v members=%v left=%v\n", ev.Kind, ev.Quorate, ev.Members, ev.Left)
	}
	cancel()
	for range events { // drains until the engine closes the channel
	}
	fmt.Println("stopped")
	// Output:
	// nodelist quorate=true members=[1 2 3 4] left=[5]
	// quorum quorate=true members=[1 2 3 4] left=[]
	// nodelist quorate=true members=[1 2 3] left=[4]
	// quorum quorate=true members=[1 2 3] left=[]
	// stopped
}

// One Client serves many subscribers over one connection to corosync, and
// answers Quorate with a round trip. A subscriber that joins later gets its
// snapshot from the Client's state.
func ExampleOpen() {
	cluster, _ := quorum.NewSimClusterN(3)
	client, err := quorum.Open(context.Background(), quorum.WithBackend(cluster.Backend(2)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	quorate, err := client.Quorate(context.Background())
	fmt.Println("quorate:", quorate, err)

	cluster.Partition([]uint32{2}) // node 2 is cut off
	events, _ := client.Subscribe(context.Background(), quorum.TrackChanges)
	for ev := range events {
		if !ev.Quorate {
			fmt.Println("lost quorum in ring", ev.RingID.NodeID, "members", ev.Members)
			break
		}
	}
	client.Close()
	var last quorum.QuorumEvent
	for ev := range events { // Close ends every subscription with ErrClosed
		last = ev
	}
	fmt.Println(errors.Is(last.Err, quorum.ErrClosed))
	// Output:
	// quorate: true <nil>
	// lost quorum in ring 2 members [2]
	// true
}
