//go:build libquorum && cgo && linux

package libquorum

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/corosync-go/quorum/internal/cs"
	"github.com/corosync-go/quorum/internal/model"
)

// Bounds on what a VoteConn reads from cmap, far above any real
// configuration, so that a misbehaving server cannot make it allocate or
// loop without end.
const (
	maxCmapString = 1 << 16 // bytes of one string value
	maxCmapKeys   = 1 << 16 // keys under nodelist.node.
)

// cmapString reads a string key. It uses cmap_get rather than
// cmap_get_string, which sizes its buffer by the server's first answer and
// hands back the second unterminated: here the size is bounded, the value
// is cut at its NUL, and a value that grew between the two calls (cmap_get
// then answers CS_ERR_INVALID_PARAM) is read again. A key of another type
// gives CS_ERR_INVALID_PARAM, as with cmap_get_string.
func cmapString(h uint64, key string) (string, error) {
	for range 3 {
		n, typ, rc := cCmapGet(h, key, nil)
		if err := codeError(opCmapGet, rc); err != nil {
			return "", err
		}
		if typ != cmapTypeString {
			return "", &cs.Error{Op: opCmapGet, Code: cs.ErrInvalidParam,
				Err: fmt.Errorf("%s has cmap type %d, not a string", key, typ)}
		}
		if n > maxCmapString {
			return "", &cs.Error{Op: opCmapGet, Code: cs.ErrTooBig,
				Err: fmt.Errorf("%s is %d bytes long", key, n)}
		}
		if n == 0 {
			return "", nil
		}
		buf := make([]byte, n)
		n, _, rc = cCmapGet(h, key, buf)
		if cs.Code(rc) == cs.ErrInvalidParam {
			continue
		}
		if err := codeError(opCmapGet, rc); err != nil {
			return "", err
		}
		buf = buf[:min(n, len(buf))]
		if i := slices.Index(buf, 0); i >= 0 {
			buf = buf[:i]
		}
		return string(buf), nil
	}
	return "", &cs.Error{Op: opCmapGet, Code: cs.ErrInvalidParam,
		Err: fmt.Errorf("%s kept changing its length while being read", key)}
}

// cmapUint32 reads a uint32 key; ok is false when the key does not exist or
// has another type, which corosync's own readers take as "not set".
func cmapUint32(h uint64, key string) (v uint32, ok bool, err error) {
	v, rc := cCmapGetUint32(h, key)
	switch cs.Code(rc) {
	case cs.OK:
		return v, true, nil
	case cs.ErrNotExist, cs.ErrInvalidParam:
		return 0, false, nil
	}
	return 0, false, codeError(opCmapGetUint32, rc)
}

// confKeys says which keys of one nodelist.node.<position> exist.
type confKeys struct {
	nodeid, name, ring0, votes bool
}

// generationKey is in cmap's main map in corosync 2.x only (3.0 moved
// connection statistics to the stats map): its presence tells a 2.x server.
const generationKey = "runtime.connections.active"

// isCorosync2 reports whether the server is corosync 2.x, whose
// corosync-quorumtool names nodes differently.
func isCorosync2(h uint64) (bool, error) {
	_, _, rc := cCmapGet(h, generationKey, nil)
	switch cs.Code(rc) {
	case cs.OK:
		return true, nil
	case cs.ErrNotExist:
		return false, nil
	}
	return false, &cs.Error{Op: opCmapGet, Code: cs.Code(rc),
		Err: fmt.Errorf("asking corosync for %s to learn its version", generationKey)}
}

// readConfig reads quorum.provider and the nodelist. A key that vanishes
// between the listing and its read (a reload running meanwhile, which a
// ConfigChanged will report) counts as not set. Names are as
// corosync-quorumtool shows them: on corosync 2.x (v2) the ring0_addr, the
// only key its quorumtool reads, even where a name key exists; later the
// name key, else the ring0_addr (where that quorumtool resolves the node's
// first address instead).
func readConfig(h uint64, v2 bool) (model.Config, error) {
	var cfg model.Config
	provider, err := cmapString(h, keyProvider)
	if err != nil && !isCode(err, cs.ErrNotExist) {
		return model.Config{}, err
	}
	cfg.Provider = provider

	positions, err := nodelistPositions(h)
	if err != nil {
		return model.Config{}, err
	}
	order := make([]uint64, 0, len(positions))
	for pos := range positions {
		order = append(order, pos)
	}
	slices.Sort(order)
	for _, pos := range order {
		k := positions[pos]
		if !k.nodeid {
			continue
		}
		base := nodelistPrefix + strconv.FormatUint(pos, 10) + "."
		id, ok, err := cmapUint32(h, base+"nodeid")
		if err != nil {
			return model.Config{}, err
		}
		if !ok {
			continue
		}
		n := model.ConfNode{ID: id}
		for _, key := range []struct {
			has  bool
			name string
		}{{k.name && !v2, "name"}, {k.ring0, "ring0_addr"}} {
			if !key.has {
				continue
			}
			s, err := cmapString(h, base+key.name)
			if err != nil && !isCode(err, cs.ErrNotExist) && !isCode(err, cs.ErrInvalidParam) {
				return model.Config{}, err
			}
			if s != "" {
				n.Name = s
				break
			}
		}
		if k.votes {
			if n.Votes, _, err = cmapUint32(h, base+"quorum_votes"); err != nil {
				return model.Config{}, err
			}
		}
		cfg.Nodes = append(cfg.Nodes, n)
	}
	slices.SortStableFunc(cfg.Nodes, func(a, b model.ConfNode) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return cfg, nil
}

// nodelistPositions lists the keys under nodelist.node. by position.
func nodelistPositions(h uint64) (map[uint64]*confKeys, error) {
	it, rc := cCmapIterInit(h, nodelistPrefix)
	if err := codeError(opCmapIterInit, rc); err != nil {
		return nil, err
	}
	positions := map[uint64]*confKeys{}
	buf := make([]byte, cmapKeyBuf)
	var iterErr error
	for i := 0; ; i++ {
		if i == maxCmapKeys {
			iterErr = &cs.Error{Op: opCmapIterNext, Code: cs.ErrTooBig,
				Err: fmt.Errorf("more than %d keys under %s", maxCmapKeys, nodelistPrefix)}
			break
		}
		key, rc := cCmapIterNext(h, it, buf)
		if cs.Code(rc) == cs.ErrNoSections {
			break
		}
		if err := codeError(opCmapIterNext, rc); err != nil {
			iterErr = err
			break
		}
		pos, name, ok := parseNodeKey(key)
		if !ok {
			continue
		}
		k := positions[pos]
		if k == nil {
			k = &confKeys{}
			positions[pos] = k
		}
		switch name {
		case "nodeid":
			k.nodeid = true
		case "name":
			k.name = true
		case "ring0_addr":
			k.ring0 = true
		case "quorum_votes":
			k.votes = true
		}
	}
	if isCode(iterErr, cs.ErrLibrary) || isCode(iterErr, cs.ErrBadHandle) {
		// The connection is gone, and the iterator with it.
		return nil, iterErr
	}
	// The server keeps the iterator until it is finalized.
	if err := codeError(opCmapIterFinalize, cCmapIterFinalize(h, it)); err != nil && iterErr == nil {
		iterErr = err
	}
	if iterErr != nil {
		return nil, iterErr
	}
	return positions, nil
}

// parseNodeKey splits nodelist.node.<position>.<name>.
func parseNodeKey(key string) (pos uint64, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, nodelistPrefix)
	if !ok {
		return 0, "", false
	}
	p, name, ok := strings.Cut(rest, ".")
	if !ok || name == "" {
		return 0, "", false
	}
	pos, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, "", false
	}
	return pos, name, true
}

func isCode(err error, code cs.Code) bool {
	var ce *cs.Error
	return errors.As(err, &ce) && ce.Code == code
}
