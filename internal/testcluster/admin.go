//go:build linux

package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SetVotes runs `corosync-quorumtool -n nodeID -v votes` in node i: the
// votes of node nodeID, cluster-wide (nodeID 0: node i itself, the tool's
// default). The error carries the tool's output; votequorum refuses, for
// instance, votes that would cost the cluster its quorum.
func (c *Cluster) SetVotes(i int, nodeID, votes uint32) error {
	args := []string{"-v", strconv.FormatUint(uint64(votes), 10)}
	if nodeID != 0 {
		args = append(args, "-n", strconv.FormatUint(uint64(nodeID), 10))
	}
	_, err := c.Output(context.Background(), i, c.tools.quorumtool, args...)
	return err
}

// Name returns node i's nodelist name as the harness last wrote it (the
// name key: NodeName, RenameNode), "" when there is no node i or the key is
// left out.
func (c *Cluster) Name(i int) string {
	nd, err := c.node(i)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return nd.name
}

// RenameNode gives node i the nodelist name name: it rewrites the name key
// of node i in every node's corosync.conf (running or not, so that a node
// started later agrees), runs `corosync-cfgtool -R` on one running node,
// which makes every node of its membership reload its own file, and waits
// until every running node's cmap holds the new name and no reload is in
// progress (config.reload_in_progress 0). Frozen nodes are not waited
// for. corosync-quorumtool 3.x shows the new name at once; 2.x shows the
// ring0_addr, whatever the name.
func (c *Cluster) RenameNode(i int, name string) error {
	nd, err := c.node(i)
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("testcluster: RenameNode: empty name")
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("testcluster: RenameNode: %w", err)
	}
	c.mu.Lock()
	nodes := append([]*node(nil), c.nodes...)
	c.mu.Unlock()
	for _, o := range nodes {
		b, err := os.ReadFile(o.confPath())
		if err != nil {
			return err
		}
		text, err := setNodeName(string(b), nd.id, name)
		if err != nil {
			return fmt.Errorf("testcluster: RenameNode: %s: %w", o.confPath(), err)
		}
		if err := writeFileAtomic(o.confPath(), []byte(text)); err != nil {
			return err
		}
	}
	c.mu.Lock()
	nd.name = name
	c.mu.Unlock()

	var live []int
	for _, o := range nodes {
		if st, err := procState(c.Pid(o.id)); err == nil && st != 'T' {
			live = append(live, o.id)
		}
	}
	if len(live) == 0 {
		return nil // the files carry it to the next start
	}
	if _, err := c.Output(context.Background(), live[0], c.tools.cfgtool, "-R"); err != nil {
		return fmt.Errorf("testcluster: RenameNode: %w", err)
	}
	ctx, cancel := c.bounded(context.Background())
	defer cancel()
	key := fmt.Sprintf("nodelist.node.%d.name", nd.id-1)
	for _, j := range live {
		var last string
		for {
			got, err := c.CmapGet(ctx, j, key)
			if err == nil && got == name {
				var busy string
				if busy, err = c.CmapGet(ctx, j, "config.reload_in_progress"); err == nil && busy == "0" {
					break
				}
				got = "reload in progress " + busy
			}
			if err != nil {
				got = err.Error()
			}
			last = got
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("testcluster: RenameNode(%d, %q): node %d: %s: %v (last: %s)", i, name, j, key, err, last)
			}
		}
	}
	return nil
}

// setNodeName returns config text with node id's name key set to name: the
// name line right above its "nodeid: id" line, as configText writes them,
// replaced or added.
func setNodeName(text string, id int, name string) (string, error) {
	lines := strings.SplitAfter(text, "\n")
	want := fmt.Sprintf("nodeid: %d", id)
	for n, l := range lines {
		if strings.TrimSpace(l) != want {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		line := indent + "name: " + name + "\n"
		if n > 0 && strings.HasPrefix(strings.TrimSpace(lines[n-1]), "name:") {
			lines[n-1] = line
		} else {
			lines = append(lines[:n], append([]string{line}, lines[n:]...)...)
		}
		return strings.Join(lines, ""), nil
	}
	return "", fmt.Errorf("no %q line", want)
}

// writeFileAtomic replaces path's content by a rename, so that a corosync
// reloading meanwhile reads the old file or the new one, never half.
func writeFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// CmapGet runs `corosync-cmapctl -g key` in node i and returns the value
// it prints ("key (type) = value"). A missing key is an error carrying
// CS_ERR_NOT_EXIST.
func (c *Cluster) CmapGet(ctx context.Context, i int, key string) (string, error) {
	tool, err := c.cmapctl()
	if err != nil {
		return "", err
	}
	out, err := c.Output(ctx, i, tool, "-g", key)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(out))
	_, val, ok := strings.Cut(line, " = ")
	if !ok {
		return "", fmt.Errorf("node %d: corosync-cmapctl -g %s: unexpected output %q", i, key, line)
	}
	return val, nil
}

// cmapctl returns the install's corosync-cmapctl, which sits next to its
// corosync-cfgtool.
func (c *Cluster) cmapctl() (string, error) {
	p := filepath.Join(filepath.Dir(c.tools.cfgtool), "corosync-cmapctl")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("testcluster: corosync-cmapctl: %v", err)
	}
	return p, nil
}
