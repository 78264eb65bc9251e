//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corosync-go/quorum/internal/testcluster"
)

// What the tests with real parts (a Prometheus server, a browser) share: a
// program they need, quorumwatch serve as a process in a node, and the
// logs of the processes they start.

// requireProgram returns path when it is an executable file. Otherwise the
// test skips, saying which Debian package brings it, or fails with that
// when QUORUM_REQUIRE_CLUSTER=1 (where a missing package must not pass as a
// skip).
func requireProgram(t *testing.T, path, pkg string) string {
	t.Helper()
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return path
	}
	msg := path + " is missing: install Debian's " + pkg + " package (apt-get install " + pkg + ")"
	if os.Getenv(testcluster.RequireEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, testcluster.RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// skipUnlessRealClusterRun skips a test that needs a real cluster and some
// seconds unless it is asked for, as the other real-cluster tests of this
// package do.
func skipUnlessRealClusterRun(t *testing.T, what string) {
	t.Helper()
	if !libquorumBuilt && os.Getenv(testcluster.RequireEnv) != "1" {
		t.Skipf("%s: run it with -tags libquorum or %s=1", what, testcluster.RequireEnv)
	}
}

// logWatch collects a process's output and reports the first submatch of
// re in it on found, once, as soon as the line that holds it is complete.
type logWatch struct {
	re    *regexp.Regexp
	found chan string // buffered, one value

	mu   sync.Mutex
	all  bytes.Buffer
	line []byte
	sent bool
}

func newLogWatch(re string) *logWatch {
	return &logWatch{re: regexp.MustCompile(re), found: make(chan string, 1)}
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if m := w.re.FindSubmatch(w.line[:i]); m != nil && !w.sent {
			w.sent = true
			w.found <- string(m[len(m)-1])
		}
		w.line = w.line[i+1:]
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// process is a program started in a node's network namespace, with its
// output in log.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *logWatch
	done chan error // cmd.Wait's result, once
	err  error
	exit bool
}

// startProcess starts name with args in node i; log watches its stdout
// and stderr. A cleanup of the test makes sure it has ended (it kills it
// if stop was not called).
func startProcess(t *testing.T, c *testcluster.Cluster, i int, log *logWatch, env []string, name string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := c.Exec(ctx, i, name, args...)
	if env != nil {
		cmd.Env = env
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Should the test process die, so does the program. The kernel sends
	// that signal when the thread that started the program ends, not the
	// process, and the runtime ends threads (those that InNode locked):
	// the thread that starts it stays locked until it has exited.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &process{t: t, name: name, cmd: cmd, log: log, done: make(chan error, 1)}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			p.done <- cmd.Wait()
		}
	}()
	if err := <-started; err != nil {
		cancel()
		t.Fatalf("starting %s in node %d: %v", name, i, err)
	}
	t.Cleanup(func() {
		if !p.exit {
			cmd.Process.Kill()
			p.err, p.exit = <-p.done, true
		}
		cancel()
	})
	return p
}

// waitLog waits for the log line the process's logWatch looks for, and
// fails the test (with the log) if the process exits first or within
// passes.
func (p *process) waitLog(what string, within time.Duration) string {
	p.t.Helper()
	select {
	case s := <-p.log.found:
		return s
	case err := <-p.done:
		p.err, p.exit = err, true
		p.t.Fatalf("%s exited (%v) before %s; its log:\n%s", p.name, err, what, p.log.String())
	case <-time.After(within):
		p.t.Fatalf("%s: no %s within %v; its log:\n%s", p.name, what, within, p.log.String())
	}
	return ""
}

// stop sends SIGTERM and waits up to within for the process to exit; the
// test fails if it does not exit 0 by then (it is killed then).
func (p *process) stop(within time.Duration) {
	p.t.Helper()
	if p.exit {
		p.t.Errorf("%s had already exited: %v; its log:\n%s", p.name, p.err, p.log.String())
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Errorf("SIGTERM to %s: %v", p.name, err)
	}
	select {
	case p.err = <-p.done:
	case <-time.After(within):
		p.cmd.Process.Kill()
		p.err = <-p.done
		p.t.Errorf("%s still running %v after SIGTERM: killed", p.name, within)
	}
	p.exit = true
	if p.err != nil {
		p.t.Errorf("%s after SIGTERM: %v, want exit 0; its log:\n%s", p.name, p.err, p.log.String())
	}
}

// nodeDialer dials from inside node i's network namespace: a connection
// made there stays there, so an HTTP client with it reaches what listens
// on the node's loopback.
func nodeDialer(c *testcluster.Cluster, i int) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		var conn net.Conn
		err := c.InNode(i, func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return conn, err
	}
}

// nodeServe is quorumwatch serve running as a process (this test binary
// as the command) in a node of a real cluster, on the node's loopback.
type nodeServe struct {
	*process
	addr   string       // host:port, inside the node's namespace
	client *http.Client // connects from inside the node's namespace
}

// startNodeServe runs `quorumwatch serve --web.listen-address 127.0.0.1:0
// args...` in node i and waits until it listens. The test's cleanup stops
// it with SIGTERM and fails unless it exits 0.
func startNodeServe(t *testing.T, c *testcluster.Cluster, i int, args ...string) *nodeServe {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := newLogWatch(`msg=listening address=(\S+)`)
	full := append([]string{"serve", "--web.listen-address", "127.0.0.1:0"}, args...)
	p := startProcess(t, c, i, log, commandEnv(c.Install().Environ()), exe, full...)
	p.name = "quorumwatch serve"
	s := &nodeServe{process: p, client: &http.Client{Transport: &http.Transport{DialContext: nodeDialer(c, i)}}}
	s.addr = p.waitLog("listening address", 30*time.Second)
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		if !p.exit {
			p.stop(15 * time.Second)
		}
	})
	return s
}

// get fetches path from the server and returns the status and the body.
func (s *nodeServe) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}

// poll calls f every interval until it returns nil, for at most within;
// then the test fails with what and f's last error.
func poll(t *testing.T, what string, within, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(interval)
	}
}
