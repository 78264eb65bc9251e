//go:build !(libquorum && cgo && linux)

package main

import (
	"context"
	"strings"
	"testing"
)

// libquorumBuilt says whether this test binary has the libquorum backend.
const libquorumBuilt = false

// Without -tags libquorum, asking for the libquorum backend must say it is
// not built in and how to get it, not hang or pretend. (auto then means the
// pure-Go backend.)
func TestLibquorumNotBuiltIn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // parts of stderr
	}{
		{[]string{"--backend", "libquorum", "--once"}, []string{"not supported", "-tags libquorum"}},
		{[]string{"--backend", "libquorum"}, []string{"not supported", "-tags libquorum"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runT(t, context.Background(), fastEnv, tc.args...)
			if code != 1 || out != "" {
				t.Errorf("exit %d stdout %q, want 1 and nothing", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}
