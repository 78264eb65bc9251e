module github.com/corosync-go/quorum

go 1.26.8
