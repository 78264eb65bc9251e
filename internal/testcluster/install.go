//go:build linux

package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// PrefixEnv is the environment variable that points the harness at a
// corosync installed under a prefix (e.g. built from an upstream tag)
// instead of the system's: corosync, corosync-quorumtool and
// corosync-cfgtool are taken from <prefix>/sbin (else <prefix>/bin) and run
// with <prefix>/lib first in LD_LIBRARY_PATH. Unset or empty means the
// system's corosync (Debian's, in /usr/sbin).
const PrefixEnv = "QUORUM_COROSYNC_PREFIX"

// Version is a corosync release, major.minor.patch.
type Version struct {
	Major, Minor, Patch int
}

// String formats v as major.minor.patch.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor.patch or later.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// versionRE matches the line corosync -v prints in every version from 2.x
// to 3.1.x: "Corosync Cluster Engine, version '3.1.7'". The version string
// comes from git describe and may carry a suffix ("2.4.6.4-abcd", "3.1.7-dirty").
var versionRE = regexp.MustCompile(`Corosync Cluster Engine, version '(\d+)\.(\d+)(?:\.(\d+))?[^']*'`)

// ParseVersion extracts the version from the output of `corosync -v`.
func ParseVersion(out string) (Version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("no \"Corosync Cluster Engine, version '...'\" in %q", firstLine(out))
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Install describes the corosync the harness runs: where its programs are,
// which environment they need and which version it is. Tests elsewhere use
// it to adapt to the version under test and to run a client binary built
// against the install's libraries (with Env or Environ).
type Install struct {
	Prefix     string // PrefixEnv's value; "" for the system's corosync
	Corosync   string // path of corosync
	Quorumtool string // path of corosync-quorumtool
	Cfgtool    string // path of corosync-cfgtool
	LibDir     string // <prefix>/lib; "" for the system's corosync
	Version    Version

	// lockDir is where this corosync puts corosync.pid (LOCALSTATEDIR/run),
	// learnt from its binary; "" when it lies under /run.
	lockDir string
}

// Env returns the environment entries the install's programs need on top
// of the caller's: "LD_LIBRARY_PATH=<prefix>/lib[:<the caller's value>]"
// for a prefix, nothing for the system's corosync.
func (in Install) Env() []string {
	if in.LibDir == "" {
		return nil
	}
	p := in.LibDir
	if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
		p += ":" + old
	}
	return []string{"LD_LIBRARY_PATH=" + p}
}

// Environ returns the process's environment with Env applied, for
// exec.Cmd.Env.
func (in Install) Environ() []string {
	return mergeEnv(os.Environ(), in.Env()...)
}

// mergeEnv returns base with each KEY=VALUE of set replacing an entry of
// the same key or added at the end.
func mergeEnv(base []string, set ...string) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, e := range base {
		k, _, _ := strings.Cut(e, "=")
		replaced := false
		for _, s := range set {
			if sk, _, _ := strings.Cut(s, "="); sk == k {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return append(out, set...)
}

// Corosync returns the corosync install the harness uses, as selected by
// PrefixEnv, with its version learnt from `corosync -v`. It does not need
// root; the error says in one line what is missing.
func Corosync() (Install, error) {
	return installFor(os.Getenv(PrefixEnv), exec.LookPath)
}

// installFor locates the corosync programs (under prefix, or the system's
// when prefix is "") and learns their version.
func installFor(prefix string, look func(string) (string, error)) (Install, error) {
	var t tools
	var err error
	if prefix == "" {
		t, err = findCorosync(look)
	} else {
		t, err = findPrefix(prefix, look)
	}
	if err != nil {
		return Install{}, err
	}
	return probe(t, prefix)
}

// findPrefix locates the corosync programs of an install prefix.
func findPrefix(prefix string, look func(string) (string, error)) (tools, error) {
	var t tools
	if !filepath.IsAbs(prefix) {
		return t, fmt.Errorf("testcluster: %s=%s: not an absolute path: point it at a corosync install prefix", PrefixEnv, prefix)
	}
	for _, x := range []struct {
		dst  *string
		name string
	}{
		{&t.corosync, "corosync"},
		{&t.quorumtool, "corosync-quorumtool"},
		{&t.cfgtool, "corosync-cfgtool"},
	} {
		for _, dir := range []string{"sbin", "bin"} {
			if p, err := look(filepath.Join(prefix, dir, x.name)); err == nil {
				*x.dst = p
				break
			}
		}
		if *x.dst == "" {
			return t, fmt.Errorf("testcluster: %s=%s: no %s in %s/sbin or %s/bin: point it at a complete corosync install prefix, or unset it for the system's corosync",
				PrefixEnv, prefix, x.name, prefix, prefix)
		}
	}
	return t, nil
}

// probes caches what probe learnt per corosync binary.
var probes = struct {
	sync.Mutex
	m map[string]Install
}{m: map[string]Install{}}

// probe runs `corosync -v` (with the install's environment) for the version,
// and reads the binary for the directory of its lock file.
func probe(t tools, prefix string) (Install, error) {
	in := Install{Prefix: prefix, Corosync: t.corosync, Quorumtool: t.quorumtool, Cfgtool: t.cfgtool}
	if prefix != "" {
		in.LibDir = filepath.Join(prefix, "lib")
	}
	probes.Lock()
	defer probes.Unlock()
	if got, ok := probes.m[t.corosync]; ok && got.Prefix == prefix {
		got.Quorumtool, got.Cfgtool = t.quorumtool, t.cfgtool
		return got, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := execCommand(ctx, t.corosync, "-v")
	cmd.Env = in.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		hint := "is it a corosync build?"
		if prefix != "" {
			hint = fmt.Sprintf("does %s hold its libraries (libqb, libcorosync_common, ...)?", in.LibDir)
		}
		return in, fmt.Errorf("testcluster: %s -v: %v: %s: %s", t.corosync, err, firstLine(string(out)), hint)
	}
	if in.Version, err = ParseVersion(string(out)); err != nil {
		return in, fmt.Errorf("testcluster: %s -v: %v", t.corosync, err)
	}
	bin, err := os.ReadFile(t.corosync)
	if err != nil {
		return in, fmt.Errorf("testcluster: %v", err)
	}
	if in.lockDir, err = lockDir(lockFile(bin)); err != nil {
		return in, fmt.Errorf("testcluster: %s: %v", t.corosync, err)
	}
	probes.m[t.corosync] = in
	return in, nil
}

// lockFile returns the path of corosync.pid compiled into a corosync
// binary (LOCALSTATEDIR "/run/corosync.pid" in 2.x and 3.x), or "".
func lockFile(bin []byte) string {
	const suffix = "/run/corosync.pid\x00"
	i := bytes.Index(bin, []byte(suffix))
	if i < 0 {
		return ""
	}
	start := bytes.LastIndexByte(bin[:i], 0) + 1
	return string(bin[start : i+len(suffix)-1])
}

// lockDir returns the directory of corosync's lock file that the node's
// private tmpfs on /run does not cover (a prefix's LOCALSTATEDIR/run), or
// "" when /run covers it (Debian: /var/run is a link to /run) or the
// binary names no lock file.
func lockDir(lock string) (string, error) {
	if lock == "" {
		return "", nil
	}
	dir := filepath.Dir(lock)
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("lock file %q is not an absolute path", lock)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if dir == "/run" || strings.HasPrefix(dir, "/run/") {
		return "", nil
	}
	return dir, nil
}

// lockMount returns the shell commands (ending in " && ") that give a node a
// private, empty directory for corosync's lock file, dir, inside the node's
// private mount namespace: a tmpfs on dir, or on its nearest existing
// ancestor when dir does not exist (a prefix's var/run before corosync made
// it), then dir created inside. Nothing changes outside the namespace.
func lockMount(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	base := dir
	for {
		if st, err := os.Stat(base); err == nil && st.IsDir() {
			break
		}
		parent := filepath.Dir(base)
		if parent == base {
			break
		}
		base = parent
	}
	if base == "/" {
		return "", fmt.Errorf("no directory above corosync's lock directory %s to mount a tmpfs on", dir)
	}
	s := "mount -t tmpfs tmpfs " + shellQuote(base) + " && "
	if base != dir {
		s += "mkdir -p " + shellQuote(dir) + " && "
	}
	return s, nil
}
