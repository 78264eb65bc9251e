//go:build linux

package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// tools are the programs the harness runs, found by Available.
type tools struct {
	corosync, quorumtool, cfgtool, ip string
}

// Available reports whether clusters can be started here: nil when the
// process is root, network namespaces can be created, ip is installed and
// so is corosync (corosync, corosync-quorumtool, corosync-cfgtool: the
// system's, or those under QUORUM_COROSYNC_PREFIX, whose `corosync -v` must
// run). Otherwise the error says in one line why and what to do.
func Available() error {
	if _, _, err := setup(os.Geteuid(), os.Getenv(PrefixEnv), exec.LookPath); err != nil {
		return err
	}
	return canUnshareNet()
}

// setup finds the programs and probes the corosync install, selected by
// prefix ("" for the system's).
func setup(euid int, prefix string, lookPath func(string) (string, error)) (tools, Install, error) {
	if prefix == "" {
		t, err := findTools(euid, lookPath)
		if err != nil {
			return t, Install{}, err
		}
		in, err := probe(t, "")
		return t, in, err
	}
	if err := checkRoot(euid); err != nil {
		return tools{}, Install{}, err
	}
	ip, err := lookSystem(lookPath, "ip", "iproute2")
	if err != nil {
		return tools{}, Install{}, err
	}
	t, err := findPrefix(prefix, lookPath)
	if err != nil {
		return t, Install{}, err
	}
	t.ip = ip
	in, err := probe(t, prefix)
	return t, in, err
}

func checkRoot(euid int) error {
	if euid != 0 {
		return fmt.Errorf("testcluster: not root (euid %d): network namespaces and corosync need root", euid)
	}
	return nil
}

// findTools checks the prerequisites that do not need a system call, for
// the system's corosync, with the effective uid and the program lookup
// passed in so tests can vary them.
func findTools(euid int, lookPath func(string) (string, error)) (tools, error) {
	if err := checkRoot(euid); err != nil {
		return tools{}, err
	}
	t, err := findCorosync(lookPath)
	if err != nil {
		return t, err
	}
	t.ip, err = lookSystem(lookPath, "ip", "iproute2")
	return t, err
}

// findCorosync finds the system's corosync programs.
func findCorosync(lookPath func(string) (string, error)) (tools, error) {
	var t tools
	var err error
	for _, x := range []struct {
		dst  *string
		name string
	}{
		{&t.corosync, "corosync"},
		{&t.quorumtool, "corosync-quorumtool"},
		{&t.cfgtool, "corosync-cfgtool"},
	} {
		if *x.dst, err = lookSystem(lookPath, x.name, "corosync"); err != nil {
			return t, err
		}
	}
	return t, nil
}

// lookSystem finds an installed program, in PATH or in the usual system
// directories: root's PATH normally has /usr/sbin, but sudo -E or a test
// runner may not; corosync lives there on Debian.
func lookSystem(lookPath func(string) (string, error), name, pkg string) (string, error) {
	if p, err := lookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p, err := lookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("testcluster: %s not installed: apt-get install %s", name, pkg)
}

// canUnshareNet creates a network namespace on a thread that is thrown away
// afterwards, to tell a root without CAP_SYS_ADMIN (an unprivileged
// container) from a usable one.
func canUnshareNet() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with the goroutine
		// instead of reusing it in the wrong namespace.
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("testcluster: cannot create a network namespace (%v): needs CAP_SYS_ADMIN, not an unprivileged container", err)
	}
	return nil
}
