//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/corosync-go/quorum/internal/syncbuf"
	"github.com/corosync-go/quorum/internal/testcluster"
)

// chromiumPath is Debian's chromium (a script that execs the browser).
const chromiumPath = "/usr/bin/chromium"

// updateScreenshotEnv, set to 1, makes TestServeBrowser write the page's
// screenshots to docs/.
const updateScreenshotEnv = "QUORUM_UPDATE_SCREENSHOT"

// pageRow is one row of the status page's node table as a person sees it.
type pageRow struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Votes string `json:"votes"`
	State string `json:"state"`
	Local bool   `json:"local"` // marked "this node"
	Class string `json:"class,omitempty"`
}

func (r pageRow) String() string {
	return fmt.Sprintf("{id %s name %s votes %s state %s local %v class %q}", r.ID, r.Name, r.Votes, r.State, r.Local, r.Class)
}

// readRows is what the browser shows in the node table.
const readRows = `Array.from(document.querySelectorAll("#nodes tr")).map(function (tr) {
	var tag = tr.querySelector("td.name .tag");
	return {
		id: tr.cells[1].textContent.trim(),
		name: tr.cells[0].firstChild.textContent.trim(),
		votes: tr.cells[2].textContent.trim(),
		state: tr.cells[3].textContent.trim(),
		local: tag !== null && tag.textContent === "this node",
		class: tr.className
	};
})`

// TestServeBrowser loads the status page of quorumwatch serve on node 1 of
// a real 3-node cluster in a real headless browser (Debian's chromium,
// driven through chromedp): the page shows the nodes as
// corosync-quorumtool does (names, ids, votes, members, this node marked).
// Then node 3's corosync is killed, and the page shows node 3 no longer a
// member without being reloaded (a value the test put in the page's window
// is still there), as /api/picture has it. The page as served, without
// JavaScript, shows the same nodes. With QUORUM_UPDATE_SCREENSHOT=1 it
// writes the page's screenshots (desktop and phone width) to docs/.
//
// Chromium runs in node 1's network namespace, beside quorumwatch: it
// reaches the server on the node's loopback, as a browser on the node
// would, and no other network at all; chromedp talks to it over a pipe,
// which crosses namespaces.
func TestServeBrowser(t *testing.T) {
	skipUnlessRealClusterRun(t, "a real browser on a real cluster, about 20 s")
	chromium := requireProgram(t, chromiumPath, "chromium")
	c := testcluster.Start(t, 3)
	s := startNodeServe(t, c, 1, "--corosync.refresh-interval", "1s")
	ctx := startChromium(t, c, 1, chromium)

	st, err := c.Quorumtool(1)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Quorate || st.Nodes != 3 {
		t.Fatalf("corosync-quorumtool on node 1 before the test: quorate %v with %d nodes, want quorate with 3", st.Quorate, st.Nodes)
	}
	browse(t, ctx, "loading the page", chromedp.Navigate("http://"+s.addr+"/"))
	// Live: the script has the event stream's first state.
	runPoll(t, ctx, "the page going live", `document.querySelector("#live.on") !== null`)
	rows := runValue[[]pageRow](t, ctx, "reading the nodes", readRows)
	checkRows(t, "the page with 3 nodes", rows, st, nil)
	if status := runValue[string](t, ctx, "reading the verdict", `document.getElementById("banner").dataset.status`); status != "quorate" {
		t.Errorf("the page's verdict with 3 nodes: %q, want quorate", status)
	}

	// A reload would lose this.
	const marker = "set before node 3 was killed"
	browse(t, ctx, "marking the page", chromedp.Evaluate[chromedp.Void](`window.quorumwatchTest = "`+marker+`"`))
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	runPoll(t, ctx, "node 3 shown not a member",
		`document.querySelector('#nodes tr[data-node-id="3"]:not(.n-member)') !== null`)
	if err := c.WaitMembers(context.Background(), 1, []uint32{1, 2}); err != nil {
		t.Fatal(err)
	}
	if st, err = c.Quorumtool(1); err != nil {
		t.Fatal(err)
	}
	// The page settles on the server's picture once its re-read after the
	// change is done.
	var pic jsonPicture
	poll(t, "the server's picture settled on nodes 1 and 2", 30*time.Second, 100*time.Millisecond, func() error {
		code, body, err := s.get(context.Background(), "/api/picture")
		if err != nil || code != 200 {
			return fmt.Errorf("GET /api/picture: %d %v", code, err)
		}
		pic = jsonPicture{}
		if err := json.Unmarshal(body, &pic); err != nil {
			return err
		}
		if pic.Syncing || pic.State != "quorate" || len(members(pic)) != 2 {
			return fmt.Errorf("%s", body)
		}
		return nil
	})
	want := pictureRows(pic)
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	runPoll(t, ctx, "the page showing the server's picture",
		`JSON.stringify(`+readRows+`.map(function (r) { return {id: r.id, name: r.name, votes: r.votes, state: r.state, local: r.local}; })) === `+
			strconv.Quote(string(wantJSON)))
	rows = runValue[[]pageRow](t, ctx, "reading the nodes", readRows)
	checkRows(t, "the page after node 3 was killed", rows, st, []string{"3"})
	if got := runValue[string](t, ctx, "reading the marker", `String(window.quorumwatchTest)`); got != marker {
		t.Errorf("the page was reloaded: window.quorumwatchTest is %q", got)
	}
	if status := runValue[string](t, ctx, "reading the verdict", `document.getElementById("banner").dataset.status`); status != "quorate" {
		t.Errorf("the page's verdict with 2 nodes of 3: %q, want quorate", status)
	}
	if got := runValue[string](t, ctx, "reading the changes", `document.querySelector("#changes li span").textContent`); !strings.Contains(got, "node3(3) left") {
		t.Errorf("the newest change on the page: %q, want node3(3) left", got)
	}
	screenshots(t, ctx)

	// Without JavaScript: the page as the server renders it.
	code, body, err := s.get(context.Background(), "/")
	if err != nil || code != 200 {
		t.Fatalf("GET /: %d %v", code, err)
	}
	snap, live := parsePage(t, body)
	checkRows(t, "the page without JavaScript", snap, st, []string{"3"})
	if !strings.HasPrefix(live, "Snapshot of ") {
		t.Errorf("the page without JavaScript says %q, want a snapshot", live)
	}
	var got []pageRow
	for _, r := range snap {
		r.Class = ""
		got = append(got, r)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the page without JavaScript: %v\nthe picture: %v", got, want)
	}
}

// pictureRows is what the page must show for the picture's nodes.
func pictureRows(p jsonPicture) []pageRow {
	var rows []pageRow
	for _, n := range p.Nodes {
		rows = append(rows, pageRow{ID: strconv.FormatUint(uint64(n.ID), 10), Name: n.Name,
			Votes: strconv.FormatUint(uint64(n.Votes), 10), State: n.State, Local: n.Local})
	}
	return rows
}

// checkRows checks the page's node rows against corosync-quorumtool's
// table: one row per configured node (members, and gone the nodes in gone),
// members with the tool's name and votes, this node marked, and each row's
// class saying its state.
func checkRows(t *testing.T, what string, rows []pageRow, st testcluster.Status, gone []string) {
	t.Helper()
	if len(rows) != len(st.Table)+len(gone) {
		t.Errorf("%s: %d rows %v; corosync-quorumtool lists %d members, and %v are gone", what, len(rows), rows, len(st.Table), gone)
	}
	byID := map[string]pageRow{}
	for _, r := range rows {
		byID[r.ID] = r
		classes := strings.Fields(r.Class)
		if !containsStr(classes, "n-"+r.State) || containsStr(classes, "local") != r.Local {
			t.Errorf("%s: row %v: its class does not say its state and whether it is this node", what, r)
		}
	}
	for _, m := range st.Table {
		id := strconv.FormatUint(uint64(m.NodeID), 10)
		r, ok := byID[id]
		want := pageRow{ID: id, Name: m.Name, Votes: strconv.FormatUint(uint64(m.Votes), 10), State: "member", Local: m.Local}
		r.Class = ""
		if !ok || r != want {
			t.Errorf("%s: node %s shown as %v, corosync-quorumtool says %v", what, id, r, want)
		}
	}
	for _, id := range gone {
		if r, ok := byID[id]; !ok || r.State == "member" || r.Local || r.Name != "node"+id {
			t.Errorf("%s: node %s shown as %v (present %v), want it there and not a member", what, id, r, ok)
		}
	}
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// startChromium starts headless chromium in node i's network namespace and
// returns a chromedp context with a tab of it. The test's cleanup closes
// the browser and fails if any of its processes is left.
func startChromium(t *testing.T, c *testcluster.Cluster, i int, chromium string) context.Context {
	t.Helper()
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	// chromedp starts the browser itself (it owns the pipe's descriptors):
	// the command is made to go through ip netns exec, as the cluster's
	// own commands do.
	wrap := c.Exec(context.Background(), i, chromium)
	// chromedp copies the browser's output from a goroutine of its own.
	var out syncbuf.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // as root
		chromedp.WindowSize(1280, 800),
		// Nothing of the browser outside the test's folder.
		chromedp.Env("HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir),
		chromedp.CombinedOutput(&out),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Path = wrap.Path
			cmd.Args = append(append([]string{}, wrap.Args...), cmd.Args[1:]...)
			// Should the test die, so does the browser.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		if err := chromedp.Cancel(cctx); err != nil {
			t.Errorf("closing chromium: %v", err)
		}
		ccancel()
		cancel()
		cancelAlloc()
		// Every process of this browser has the profile on its command
		// line.
		poll(t, "chromium's processes gone", 10*time.Second, 50*time.Millisecond, func() error {
			if pids := processesWith("--user-data-dir=" + profile); len(pids) > 0 {
				return fmt.Errorf("still running: %v", pids)
			}
			return nil
		})
		if t.Failed() {
			t.Logf("chromium's output:\n%s", out.String())
		}
	})
	// The first action starts the browser; the test's actions have their
	// own bounds.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v\n%s", err, out.String())
	}
	return ctx
}

// processesWith lists the processes with arg on their command line.
func processesWith(arg string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for a := range bytes.SplitSeq(cmdline, []byte{0}) {
			if string(a) == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// actionTimeout bounds each browser action: generous, for a loaded
// machine.
const actionTimeout = 60 * time.Second

func browse(t *testing.T, ctx context.Context, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	runAction(t, ctx, what, a)
}

func runAction[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// runValue evaluates a JavaScript expression in the page.
func runValue[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	return runAction(t, ctx, what, chromedp.Evaluate[T](expr))
}

// runPoll waits, within actionTimeout, until expr is true in the page.
func runPoll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	runAction(t, ctx, what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(actionTimeout)))
}

// screenshots takes the page at a desktop's and at a phone's width and
// checks that they are images of those widths; with
// QUORUM_UPDATE_SCREENSHOT=1 it writes them to docs/.
func screenshots(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, v := range []struct {
		file          string
		width, height int64
		scale         float64
		mobile        bool
	}{
		{"status-page.png", 1280, 800, 1, false},
		{"status-page-phone.png", 390, 844, 2, true},
	} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(v.scale)}
		if v.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		browse(t, ctx, "setting the viewport", chromedp.EmulateViewport(v.width, v.height, opts...))
		img := runAction(t, ctx, "taking a screenshot", chromedp.FullScreenshot(100))
		cfg, err := png.DecodeConfig(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("%s: %v", v.file, err)
		}
		if want := int(float64(v.width) * v.scale); cfg.Width != want {
			t.Errorf("%s: %d pixels wide, want %d", v.file, cfg.Width, want)
		}
		if os.Getenv(updateScreenshotEnv) == "1" {
			path := filepath.Join("..", "..", "docs", v.file)
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%dx%d)", path, cfg.Width, cfg.Height)
		}
	}
	browse(t, ctx, "resetting the viewport", chromedp.ResetViewport())
}

// parsePage reads the node rows and the live line of the page as the
// server sends it.
func parsePage(t *testing.T, body []byte) (rows []pageRow, live string) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	attr := func(n *html.Node, key string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val, true
			}
		}
		return "", false
	}
	var text func(n *html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			b.WriteString(text(ch))
		}
		return b.String()
	}
	var walk func(n *html.Node, inNodes bool)
	walk = func(n *html.Node, inNodes bool) {
		if n.Type == html.ElementNode {
			id, _ := attr(n, "id")
			switch {
			case n.Data == "tbody" && id == "nodes":
				inNodes = true
			case n.Data == "span" && id == "live":
				live = strings.TrimSpace(text(n))
			case n.Data == "tr" && inNodes:
				var cells []*html.Node
				for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
					if ch.Type == html.ElementNode && ch.Data == "td" {
						cells = append(cells, ch)
					}
				}
				if len(cells) != 4 || cells[0].FirstChild == nil {
					t.Fatalf("a node row of %d cells in the page:\n%s", len(cells), body)
				}
				r := pageRow{ID: strings.TrimSpace(text(cells[1])), Name: strings.TrimSpace(text(cells[0].FirstChild)),
					Votes: strings.TrimSpace(text(cells[2])), State: strings.TrimSpace(text(cells[3]))}
				r.Class, _ = attr(n, "class")
				for ch := cells[0].FirstChild; ch != nil; ch = ch.NextSibling {
					if cls, _ := attr(ch, "class"); ch.Type == html.ElementNode && cls == "tag" && text(ch) == "this node" {
						r.Local = true
					}
				}
				rows = append(rows, r)
				return
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch, inNodes)
		}
	}
	walk(doc, false)
	return rows, live
}
