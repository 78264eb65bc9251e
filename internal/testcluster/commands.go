//go:build linux

package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ipCmd runs ip with args and returns an error carrying its output.
func (c *Cluster) ipCmd(ctx context.Context, args ...string) error {
	return runTool(ctx, c.tools.ip, args...)
}

func runTool(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := execCommand(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// execCommand is exec.CommandContext with a bound on waiting for output
// pipes after the process ends (a grandchild may hold them open).
func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd
}

// Exec returns a command that runs name with args inside node i's network
// namespace (through `ip netns exec`, so also in a private mount namespace
// that shares /dev/shm with the caller). The caller runs it; ctx kills it.
// For a node index out of range the command fails when run. Its Env is the
// install's environment (Install().Environ(): with QUORUM_COROSYNC_PREFIX,
// the prefix's lib first in LD_LIBRARY_PATH, so that corosync's tools and
// clients built against the prefix's libraries find them); append to it
// rather than replace it.
func (c *Cluster) Exec(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	ns := c.Netns(i)
	if ns == "" {
		// An invalid namespace name makes ip fail with a clear message
		// instead of running the command in the caller's namespace.
		ns = fmt.Sprintf("testcluster-no-node-%d", i)
	}
	cmd := execCommand(ctx, c.tools.ip, append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = c.inst.Environ()
	return cmd
}

// ExecAs is Exec with name run as user and group uid with no
// supplementary groups (through setpriv from util-linux), e.g. to check
// that corosync refuses a user until GrantUID.
func (c *Cluster) ExecAs(ctx context.Context, i int, uid uint32, name string, args ...string) *exec.Cmd {
	id := strconv.FormatUint(uint64(uid), 10)
	return c.Exec(ctx, i, "setpriv", append([]string{"--reuid=" + id, "--regid=" + id, "--clear-groups", name}, args...)...)
}

// Output runs name in node i and returns its combined output; the error
// includes that output.
func (c *Cluster) Output(ctx context.Context, i int, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := c.Exec(ctx, i, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("node %d: %s %s: %w: %s", i, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// SetExpectedVotes runs `corosync-quorumtool -e v` in node i. The error
// carries the tool's output (corosync refuses values it cannot apply).
func (c *Cluster) SetExpectedVotes(i int, v uint32) error {
	_, err := c.Output(context.Background(), i, c.tools.quorumtool, "-e", strconv.FormatUint(uint64(v), 10))
	return err
}

// GrantUID lets uid use node i's IPC: it appends a uidgid section to the
// node's corosync.conf and reloads it with `corosync-cfgtool -R`. The grant
// survives a restart of the node.
func (c *Cluster) GrantUID(i int, uid uint32) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(nd.confPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "uidgid {\n\tuid: %d\n}\n", uid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	_, err = c.Output(context.Background(), i, c.tools.cfgtool, "-R")
	return err
}

// Quorumtool runs `corosync-quorumtool -s` in node i and parses its view. A
// node that is not quorate is not an error (the tool exits 2 then).
func (c *Cluster) Quorumtool(i int) (Status, error) {
	return c.QuorumtoolContext(context.Background(), i)
}

// QuorumtoolContext is Quorumtool bounded by ctx as well as by a
// per-call timeout (a frozen corosync never answers).
func (c *Cluster) QuorumtoolContext(ctx context.Context, i int) (Status, error) {
	return c.QuorumtoolStatus(ctx, i)
}

// QuorumtoolStatus runs `corosync-quorumtool -s` with extra flags in node i
// and parses its view (for the install's version). Flags that keep the
// format ParseStatus reads: -p (the Qdevice column on every row, NR where
// no device is registered, even when none is), -H (node ids in hex), -i
// (addresses instead of names), -o a|n|i (order). Not -a: a name then
// lists every address. It is bounded by ctx and by a per-call timeout (a
// frozen corosync never answers). A node that is not quorate is not an
// error (the tool exits 2 then).
func (c *Cluster) QuorumtoolStatus(ctx context.Context, i int, flags ...string) (Status, error) {
	if _, err := c.node(i); err != nil {
		return Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	args := append([]string{"-s"}, flags...)
	out, err := c.Exec(ctx, i, c.tools.quorumtool, args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Status{}, fmt.Errorf("node %d: corosync-quorumtool %s: %w: %s", i, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	st, perr := ParseStatusVersion(string(out), c.inst.Version)
	if perr != nil {
		return st, fmt.Errorf("node %d: %w", i, perr)
	}
	return st, nil
}

// QuorumtoolList runs `corosync-quorumtool -l` with extra flags in node i
// and parses its membership table (ParseList). Unlike -s it works without
// a quorum provider.
func (c *Cluster) QuorumtoolList(ctx context.Context, i int, flags ...string) (Status, error) {
	if _, err := c.node(i); err != nil {
		return Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	args := append([]string{"-l"}, flags...)
	out, err := c.Exec(ctx, i, c.tools.quorumtool, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Status{}, fmt.Errorf("node %d: corosync-quorumtool %s: %w: %s", i, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	st, perr := ParseList(string(out))
	if perr != nil {
		return st, fmt.Errorf("node %d: %w", i, perr)
	}
	return st, nil
}

// view returns node i's view: QuorumtoolStatus, or without a quorum
// provider, where `corosync-quorumtool -s` fails in every version and -l
// lists nobody, a Status with only Members, Nodes and Raw set, from
// CmapMembers.
func (c *Cluster) view(ctx context.Context, i int, flags ...string) (Status, error) {
	if !c.cfg.noProvider {
		return c.QuorumtoolStatus(ctx, i, flags...)
	}
	ids, raw, err := c.cmapMembers(ctx, i)
	if err != nil {
		return Status{}, err
	}
	return Status{Members: ids, Nodes: len(ids), Raw: raw}, nil
}

// CmapMembers returns the node ids of node i's membership as totem reports
// them in cmap, whatever the quorum provider: the keys
// runtime.members.<id>.status (3.x; runtime.totem.pg.mrp.srp.members.<id>
// in 2.x) that read "joined" (those gone read "left"), ascending.
func (c *Cluster) CmapMembers(ctx context.Context, i int) ([]uint32, error) {
	ids, _, err := c.cmapMembers(ctx, i)
	return ids, err
}

func (c *Cluster) cmapMembers(ctx context.Context, i int) ([]uint32, string, error) {
	tool, err := c.cmapctl()
	if err != nil {
		return nil, "", err
	}
	prefix := "runtime.members."
	if !c.inst.Version.AtLeast(3, 0, 0) {
		prefix = "runtime.totem.pg.mrp.srp.members."
	}
	out, err := c.Output(ctx, i, tool, prefix)
	if err != nil {
		return nil, string(out), err
	}
	ids := []uint32{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), " (str) = ")
		rest, ok2 := strings.CutPrefix(k, prefix)
		id, ok3 := strings.CutSuffix(rest, ".status")
		if !ok || !ok2 || !ok3 || v != "joined" {
			continue
		}
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, string(out), fmt.Errorf("node %d: cmap key %s: %v", i, k, err)
		}
		ids = append(ids, uint32(n))
	}
	return sortedCopy(ids), string(out), nil
}

// WaitMembers polls node i's view until its members are exactly want (in
// any order). Without a deadline on ctx the cluster's wait timeout applies.
// The error includes the last view seen and the node's log tail.
func (c *Cluster) WaitMembers(ctx context.Context, i int, want []uint32) error {
	return c.WaitStatus(ctx, i, func(s Status) bool { return sameSet(s.Members, want) },
		fmt.Sprintf("members %v", sortedCopy(want)))
}

// WaitStatus polls node i's view (QuorumtoolStatus with flags; with
// NoQuorumProvider only its Members, Nodes and Raw, from CmapMembers) until
// cond holds; what describes cond in the error. Without a deadline on ctx
// the cluster's wait timeout applies.
func (c *Cluster) WaitStatus(ctx context.Context, i int, cond func(Status) bool, what string, flags ...string) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	var (
		last    Status
		lastErr error
		seen    bool
	)
	for {
		if err := c.checkAlive(nd); err != nil {
			return err
		}
		st, err := c.view(ctx, i, flags...)
		if err == nil {
			if cond(st) {
				return nil
			}
			last, seen, lastErr = st, true, nil
		} else {
			lastErr = err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			var got string
			switch {
			case lastErr != nil:
				got = "last error: " + lastErr.Error()
			case seen:
				got = "last view:\n" + strings.TrimRight(last.Raw, "\n")
			default:
				got = "no view"
			}
			return fmt.Errorf("node %d: waiting for %s: %v; %s\nlog tail of node %d:\n%s", i, what, err, got, i, c.logTail(nd, 30))
		}
	}
}

func sortedCopy(v []uint32) []uint32 {
	s := append([]uint32(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func sameSet(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := sortedCopy(a), sortedCopy(b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}
