//go:build linux

package native

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/corosync-go/quorum/internal/cs"
)

// Seeds live in testdata/fuzz: real corosync 3.1.7 messages recorded with
// internal/qbipc/capture_test.go.

func FuzzNotification(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		n, v0, err := DecodeNotification(b)
		if err != nil {
			if n.Kind != 0 || n.Members != nil || v0 {
				t.Fatal("a notification with an error")
			}
			return
		}
		if 4*(len(n.Members)+len(n.Joined)+len(n.Left)) > len(b) {
			t.Fatalf("%d entries from %d bytes", len(n.Members)+len(n.Joined)+len(n.Left), len(b))
		}
		if n.Kind != KindNodeList && n.Kind != KindQuorum || v0 && n.Kind != KindQuorum {
			t.Fatalf("kind %v (v0 %v)", n.Kind, v0)
		}
	})
}

func FuzzUint32Response(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, want := range []int32{ResGetQuorate, ResGetType, ResModelGetType} {
			v, code, err := DecodeUint32Response(b, want)
			if err == nil && code != cs.OK && v != 0 {
				t.Fatalf("value %d with code %v", v, code)
			}
		}
	})
}

func FuzzBareResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, want := range []int32{ResTrackStart, ResTrackStop} {
			h, err := DecodeResponse(b, want)
			if err == nil && int(h.Size) != len(b) {
				t.Fatalf("size %d for %d bytes", h.Size, len(b))
			}
		}
	})
}

// seed reads a recorded message from testdata/fuzz.
func seed(t *testing.T, target, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	body := strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "[]byte("), ")")
	s, err := strconv.Unquote(body)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// TestRecordedMessages decodes what a single-node corosync 3.1.7 (node 1,
// votequorum, ring 1.5) sent, checking the layout facts the codec rests on.
func TestRecordedMessages(t *testing.T) {
	n, _, err := DecodeNotification(seed(t, "FuzzNotification", "v1-id7"))
	if err != nil || n.Kind != KindNodeList || n.Ring != (RingID{NodeID: 1, Seq: 5}) || !slices.Equal(n.Members, []uint32{1}) ||
		len(n.Joined) != 0 || len(n.Left) != 0 {
		t.Fatalf("nodelist: %+v %v", n, err)
	}
	n, _, err = DecodeNotification(seed(t, "FuzzNotification", "v1-id6"))
	if err != nil || n.Kind != KindQuorum || !n.Quorate || n.Ring != (RingID{NodeID: 1, Seq: 5}) ||
		!slices.Equal(n.Members, []uint32{1}) {
		t.Fatalf("quorum: %+v %v", n, err)
	}
	// V0 has no ring node id: Dispatch infers it.
	n, v0, err := DecodeNotification(seed(t, "FuzzNotification", "v0-id3"))
	if err != nil || !v0 || n.Kind != KindQuorum || !n.Quorate || n.Ring != (RingID{NodeID: 0, Seq: 5}) || !slices.Equal(n.Members, []uint32{1}) {
		t.Fatalf("v0: %+v %v", n, err)
	}
	for name, want := range map[string]int32{"getquorate": ResGetQuorate, "gettype": ResGetType, "model-gettype": ResModelGetType} {
		v, code, err := DecodeUint32Response(seed(t, "FuzzUint32Response", name), want)
		if err != nil || code != cs.OK || v != 1 {
			t.Fatalf("%s: %d %v %v", name, v, code, err)
		}
	}
	for name, tc := range map[string]struct {
		want int32
		code cs.Code
	}{
		"trackstart": {ResTrackStart, cs.OK}, "trackstart-exist": {ResTrackStart, cs.ErrExist},
		"trackstop": {ResTrackStop, cs.OK}, "unknown-request": {ResTrackStop, cs.ErrInvalidParam},
	} {
		h, err := DecodeResponse(seed(t, "FuzzBareResponse", name), tc.want)
		if err != nil || cs.Code(h.Error) != tc.code {
			t.Fatalf("%s: %+v %v", name, h, err)
		}
	}
}
