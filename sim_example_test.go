package quorum_test

import (
	"fmt"
	"log"

	"github.com/corosync-go/quorum"
)

// A simulated cluster configured with last_man_standing: once the window
// has passed after nodes left, the survivors take the nodes present as
// their expected votes, so quorum holds down to two of four nodes. (Without
// it, two of four votes are not a quorum.)
func ExampleSimCluster_lastManStanding() {
	cluster, err := quorum.NewSimClusterConfig(quorum.SimConfig{
		Nodes:           []quorum.SimNode{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}},
		LastManStanding: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []uint32{4, 3, 2} {
		if err := cluster.Stop(id); err != nil {
			log.Fatal(err)
		}
		quorate, _, members, _ := cluster.View(1)
		fmt.Printf("members %v: quorate %v\n", members, quorate)
		cluster.EndLastManStandingWindow()
	}
	// Output:
	// members [1 2 3]: quorate true
	// members [1 2]: quorate true
	// members [1]: quorate false
}

// A quorum device breaks the tie of a two-node cluster: qnetd gives its
// vote to the half with the tie-breaker node (the lowest by default), and
// without qnetd neither half has it.
func ExampleSimCluster_qdevice() {
	cluster, err := quorum.NewSimClusterConfig(quorum.SimConfig{
		Nodes:   []quorum.SimNode{{ID: 1}, {ID: 2}},
		Qdevice: &quorum.SimQdevice{Votes: 1},
	})
	if err != nil {
		log.Fatal(err)
	}
	show := func(what string) {
		q1, _, _, _ := cluster.View(1)
		q2, _, _, _ := cluster.View(2)
		fmt.Printf("%s: node 1 quorate %v, node 2 quorate %v\n", what, q1, q2)
	}
	if err := cluster.Partition([]uint32{1}, []uint32{2}); err != nil {
		log.Fatal(err)
	}
	show("split")
	if err := cluster.SetQnetd(false); err != nil {
		log.Fatal(err)
	}
	show("split, qnetd lost")
	// Output:
	// split: node 1 quorate true, node 2 quorate false
	// split, qnetd lost: node 1 quorate false, node 2 quorate false
}
