//go:build linux

package testcluster

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]Version{
		// corosync 2.4.6 and 3.0.4 built from their tags.
		"Corosync Cluster Engine, version '2.4.6'\nCopyright (c) 2006-2009 Red Hat, Inc.\n": {2, 4, 6},
		"Corosync Cluster Engine, version '3.0.4'\nCopyright (c) 2006-2018 Red Hat, Inc.\n": {3, 0, 4},
		// Debian 12's, with the features list 3.1 adds.
		"Corosync Cluster Engine, version '3.1.7'\nCopyright (c) 2006-2021 Red Hat, Inc.\n\nBuilt-in features: dbus monitoring watchdog augeas systemd xmlconf vqsim nozzle snmp pie relro bindnow\nAvailable crypto models: nss openssl\n": {3, 1, 7},
		// git describe of a build between tags.
		"Corosync Cluster Engine, version '3.1.10.2-abc1-dirty'\n": {3, 1, 10},
		"Corosync Cluster Engine, version '2.99'\n":                {2, 99, 0},
	} {
		got, err := ParseVersion(out)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", firstLine(out), got, err, want)
		}
	}
	for _, out := range []string{"", "corosync: command not found", "Corosync Cluster Engine, version 'x.y'"} {
		if v, err := ParseVersion(out); err == nil {
			t.Errorf("ParseVersion(%q) = %v, want an error", out, v)
		}
	}
	if s := (Version{2, 4, 6}).String(); s != "2.4.6" {
		t.Errorf("String: %q", s)
	}
}

func TestVersionAtLeast(t *testing.T) {
	v := Version{3, 0, 4}
	for _, tc := range []struct {
		major, minor, patch int
		want                bool
	}{
		{3, 0, 4, true}, {3, 0, 3, true}, {2, 99, 9, true}, {2, 4, 6, true},
		{3, 0, 5, false}, {3, 1, 0, false}, {4, 0, 0, false},
	} {
		if got := v.AtLeast(tc.major, tc.minor, tc.patch); got != tc.want {
			t.Errorf("%v.AtLeast(%d, %d, %d) = %v", v, tc.major, tc.minor, tc.patch, got)
		}
	}
}

// fakeCluster is a cluster of n nodes that was never started, for the
// rendering functions.
func fakeCluster(v Version, n int, opts ...Option) *Cluster {
	c := &Cluster{prefix: "qtc-1-abcdef", dir: "/tmp/qtc-1-abcdef", inst: Install{Version: v}}
	c.cfg = config{votes: map[int]uint32{}, nodeExtra: map[int][]string{}}
	for _, o := range opts {
		o(&c.cfg)
	}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, &node{id: i, ns: "ns", addr: Subnet + "." + string(rune('0'+i)), dir: filepath.Join(c.dir, "n"+string(rune('0'+i)))})
	}
	return c
}

func TestConfigText(t *testing.T) {
	has := func(t *testing.T, conf string, want, not []string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(conf, w) {
				t.Errorf("config lacks %q:\n%s", w, conf)
			}
		}
		for _, w := range not {
			if strings.Contains(conf, w) {
				t.Errorf("config has %q:\n%s", w, conf)
			}
		}
	}
	common := []string{"\tversion: 2\n", "\tcluster_name: qtc-1-abcdef\n", "\ttoken: 1000\n", "\tcrypto_cipher: none\n",
		"\t\tnodeid: 2\n\t\tquorum_votes: 2\n\t\tring0_addr: 10.213.0.2\n", "\tprovider: corosync_votequorum\n",
		"\tblackbox: off\n", "\ttimestamp: on\n"}
	for _, v := range []Version{{3, 0, 4}, {3, 1, 7}, {3, 1, 10}} {
		t.Run(v.String(), func(t *testing.T) {
			c := fakeCluster(v, 3, Votes(2, 2), SocketIPC())
			has(t, c.configText(c.nodes[0]), append(common, "\ttransport: knet\n",
				"system {\n\tstate_dir: /tmp/qtc-1-abcdef/n1/state\n\tqb_ipc_type: socket\n}\n"),
				[]string{"udpu", "qb {", "ipc_type: socket\n}\nqb"})
			c = fakeCluster(v, 3, Votes(2, 2))
			has(t, c.configText(c.nodes[0]), []string{"system {\n\tstate_dir: /tmp/qtc-1-abcdef/n1/state\n}\n"}, []string{"ipc_type"})
		})
	}
	t.Run("2.4.6", func(t *testing.T) {
		c := fakeCluster(Version{2, 4, 6}, 3, Votes(2, 2), SocketIPC())
		has(t, c.configText(c.nodes[0]), append(common, "\ttransport: udpu\n", "qb {\n\tipc_type: socket\n}\n"),
			[]string{"knet", "system {", "state_dir", "qb_ipc_type"})
		c = fakeCluster(Version{2, 4, 6}, 3, Votes(2, 2))
		has(t, c.configText(c.nodes[0]), common, []string{"knet", "system {", "qb {", "ipc_type"})
	})
}

func TestCorosyncCommand(t *testing.T) {
	c := fakeCluster(Version{3, 1, 7}, 1)
	c.tools.corosync = "/usr/sbin/corosync"
	script, env, err := c.corosyncCommand(c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := "mount -t tmpfs tmpfs /run && exec '/usr/sbin/corosync' -f -c '/tmp/qtc-1-abcdef/n1/corosync.conf'"; script != want {
		t.Errorf("3.x script %q, want %q", script, want)
	}
	for _, e := range env {
		if strings.HasPrefix(e, "COROSYNC_") {
			t.Errorf("3.x environment has %s", e)
		}
	}

	t.Setenv("LD_LIBRARY_PATH", "/old")
	dir := t.TempDir()
	c = fakeCluster(Version{2, 4, 6}, 1)
	c.tools.corosync = "/p/sbin/corosync"
	c.inst.LibDir = "/p/lib"
	c.inst.lockDir = filepath.Join(dir, "var", "run") // var/run not made yet
	script, env, err = c.corosyncCommand(c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	want := "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs '" + dir + "' && mkdir -p '" + dir + "/var/run' && exec '/p/sbin/corosync' -f"
	if script != want {
		t.Errorf("2.x script %q, want %q", script, want)
	}
	for _, w := range []string{"COROSYNC_MAIN_CONFIG_FILE=/tmp/qtc-1-abcdef/n1/corosync.conf",
		"COROSYNC_RUN_DIR=/tmp/qtc-1-abcdef/n1/state", "LD_LIBRARY_PATH=/p/lib:/old"} {
		if !slices.Contains(env, w) {
			t.Errorf("2.x environment lacks %s", w)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(env), func(e string) bool { return !strings.HasPrefix(e, "LD_LIBRARY_PATH=") })); n != 1 {
		t.Errorf("%d LD_LIBRARY_PATH entries", n)
	}
}

func TestInstallEnv(t *testing.T) {
	t.Setenv("LD_LIBRARY_PATH", "")
	if env := (Install{}).Env(); env != nil {
		t.Errorf("system install: %v", env)
	}
	in := Install{Prefix: "/p", LibDir: "/p/lib"}
	if env := in.Env(); !slices.Equal(env, []string{"LD_LIBRARY_PATH=/p/lib"}) {
		t.Errorf("no LD_LIBRARY_PATH before: %v", env)
	}
	t.Setenv("LD_LIBRARY_PATH", "/a:/b")
	if env := in.Env(); !slices.Equal(env, []string{"LD_LIBRARY_PATH=/p/lib:/a:/b"}) {
		t.Errorf("with LD_LIBRARY_PATH=/a:/b: %v", env)
	}
	if got := mergeEnv([]string{"A=1", "LD_LIBRARY_PATH=/a", "B=2"}, "LD_LIBRARY_PATH=/p/lib:/a", "C=3"); !slices.Equal(got,
		[]string{"A=1", "B=2", "LD_LIBRARY_PATH=/p/lib:/a", "C=3"}) {
		t.Errorf("mergeEnv: %v", got)
	}
}

func TestFindPrefix(t *testing.T) {
	files := map[string]bool{
		"/p/sbin/corosync":            true,
		"/p/sbin/corosync-quorumtool": true,
		"/p/bin/corosync-cfgtool":     true, // found in bin
		"/p/bin/corosync":             true, // sbin wins
	}
	look := func(name string) (string, error) {
		if files[name] {
			return name, nil
		}
		return "", exec.ErrNotFound
	}
	tl, err := findPrefix("/p", look)
	if err != nil || tl.corosync != "/p/sbin/corosync" || tl.quorumtool != "/p/sbin/corosync-quorumtool" || tl.cfgtool != "/p/bin/corosync-cfgtool" {
		t.Errorf("findPrefix: %+v, %v", tl, err)
	}
	delete(files, "/p/bin/corosync-cfgtool")
	_, err = findPrefix("/p", look)
	if err == nil || !strings.Contains(err.Error(), PrefixEnv+"=/p: no corosync-cfgtool in /p/sbin or /p/bin") || strings.Contains(err.Error(), "\n") {
		t.Errorf("missing cfgtool: %v", err)
	}
	if _, err := findPrefix("p", look); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative prefix: %v", err)
	}
	// A prefix does not need the system's corosync; root is still needed.
	if _, _, err := setup(1000, "/p", look); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("non-root with a prefix: %v", err)
	}
}

func TestLockFile(t *testing.T) {
	bin := []byte("\x7fELF\x00junk\x00/opt/cs/var/run/corosync.pid\x00/opt/cs/var/lib/corosync\x00")
	if got := lockFile(bin); got != "/opt/cs/var/run/corosync.pid" {
		t.Errorf("lockFile = %q", got)
	}
	if got := lockFile([]byte("\x00nothing\x00")); got != "" {
		t.Errorf("lockFile without one = %q", got)
	}
	for lock, want := range map[string]string{
		"":                             "",
		"/run/corosync.pid":            "",
		"/opt/cs/var/run/corosync.pid": "/opt/cs/var/run",
	} {
		if got, err := lockDir(lock); err != nil || got != want {
			t.Errorf("lockDir(%q) = %q, %v; want %q", lock, got, err, want)
		}
	}
	if _, err := lockDir("run/corosync.pid"); err == nil {
		t.Error("relative lock file accepted")
	}
	dir := t.TempDir()
	if s, err := lockMount(dir); err != nil || s != "mount -t tmpfs tmpfs '"+dir+"' && " {
		t.Errorf("lockMount of an existing dir: %q, %v", s, err)
	}
	if s, err := lockMount(""); err != nil || s != "" {
		t.Errorf("lockMount(\"\"): %q, %v", s, err)
	}
	if _, err := lockMount("/nonexistent-testcluster/run"); err == nil {
		t.Error("lockMount mounted over /")
	}
}

func TestShmOf(t *testing.T) {
	for name, want := range map[string]bool{
		// libqb 1.0.4 and later: a folder per connection.
		"qb-1234-5678-20-AbCdEf":  true,
		"qb-12345-5678-20-AbCdEf": false,
		"qb-5678-1234-20-AbCdEf":  false,
		// libqb up to 1.0.3: flat files.
		"qb-cmap-request-1234-5678-20-header":       true,
		"qb-cmap-request-1234-5678-20-data":         true,
		"qb-votequorum-response-1234-5678-21-data":  true,
		"qb-quorum-event-1234-5678-22-header":       true,
		"qb-quorum-control-1234-5678-23":            true,
		"qb-quorum-control-5678-1234-23":            false,
		"qb-cmap-request-9999-1234-20-header":       false,
		"qb-cmap-request-12345-5678-20-header":      false,
		"qb-cmap-request-1234-5678-20-header-extra": false,
		// The blackbox.
		"qb-corosync-1234-blackbox-header":  true,
		"qb-corosync-1234-blackbox-data":    true,
		"qb-corosync-12345-blackbox-header": false,
		"qb-other-1234-blackbox-header":     false,
	} {
		if got := shmOf(name, 1234); got != want {
			t.Errorf("shmOf(%q, 1234) = %v, want %v", name, got, want)
		}
	}
}
