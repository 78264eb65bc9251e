//go:build linux

package native

import (
	"context"
	"fmt"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/qbipc"
)

// Family is what a corosync does with a request id it does not have, which
// decides what a client may send it.
type Family int

const (
	// Corosync2 is corosync 2.x (2.3 and 2.4 are in production): it looks a
	// request's handler up without a range check and dies of SIGSEGV on an
	// id it does not have, on every service. Only ids that 2.x has may ever
	// be sent to it.
	Corosync2 Family = 2
	// Corosync3 is corosync 2.99 and later: an id it does not have is
	// answered with a bare CS_ERR_INVALID_PARAM. Model V1 came with 3.1.0;
	// 3.0 refuses MODEL_GETTYPE that way.
	Corosync3 Family = 3
)

func (f Family) String() string {
	switch f {
	case Corosync2:
		return "corosync 2.x"
	case Corosync3:
		return "corosync 2.99 or later"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// knownRequests is how many request ids (0 to n-1) each service has in
// corosync 2.3 and 2.4, whose tables end there: quorum's 0-3 (GETQUORATE,
// TRACKSTART, TRACKSTOP, GETTYPE), cmap's 0-8 (SET to TRACK_DELETE) and
// votequorum's 0-9 (GETINFO to QDEVICE_MASTER_WINS; every 2.x has these
// ten).
var knownRequests = map[string]int32{
	Service:     ReqGetType + 1,
	CMapService: CMapReqTrackDelete + 1,
	VoteService: voteReqCount,
}

// mayRequest reports whether a request id may be sent to service on a server
// of family f: on corosync 2.x only ids that 2.x has, and nothing to a
// service this package has no table for.
func mayRequest(f Family, service string, id int32) bool {
	if f == Corosync3 {
		return true
	}
	n, ok := knownRequests[service]
	return ok && id >= 0 && id < n
}

// generationKey is in cmap's main map from corosync 2.3.0 to 2.4.x, set when
// its IPC starts, and in no map a client reads by default from 2.99.0 on,
// which moved connection statistics to the stats map (commit 55c3dcb7).
const generationKey = "runtime.connections.active"

// Probe learns the family of the corosync behind cfg (its cmap service;
// cfg.Service "" means "cmap") with one cmap GET, a request every corosync
// since 2.0 has under the same id. It is the only way this package learns
// what a server accepts: nothing else is sent before it.
func Probe(ctx context.Context, cfg qbipc.Config) (Family, error) {
	const op = "cmap_initialize"
	if cfg.Service == "" {
		cfg.Service = CMapService
	}
	ipc, err := qbipc.Dial(ctx, cfg)
	if err != nil {
		return 0, relabel(op, err)
	}
	defer ipc.Close()
	// GET is id 2 in every version, so the guard passes it whatever the
	// family turns out to be.
	_, _, code, err := cmapGet(ctx, ipc, Corosync2, CMapService, generationKey, 0)
	if err != nil {
		return 0, err
	}
	switch code {
	case cs.OK:
		return Corosync2, nil
	case cs.ErrNotExist:
		return Corosync3, nil
	}
	return 0, &cs.Error{Op: "cmap_get", Code: code, Err: fmt.Errorf("asking corosync for %s to learn its version", generationKey)}
}
