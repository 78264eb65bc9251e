package quorum

import (
	"fmt"
	"time"
)

// Option is what the package-level Subscribe takes: any OpenOption or
// SubscribeOption, since it makes both a connection and a subscription.
type Option interface {
	apply(*settings)
}

// OpenOption configures a connection: Open takes it, and so does the
// package-level Subscribe. WithBackend, WithBackoff, WithoutReconnect and
// WithTrustedUIDs are OpenOptions.
type OpenOption interface {
	Option
	openOption()
}

// SubscribeOption configures a subscription: (*Client).Subscribe takes it,
// and so does the package-level Subscribe. WithLossless is one.
type SubscribeOption interface {
	Option
	subscribeOption()
}

type settings struct {
	backend        Backend
	lossless       int // 0: coalesce to latest
	reconnect      bool
	backoffMin     time.Duration
	backoffMax     time.Duration
	trustedUIDs    []uint32
	picture        bool          // WithPicture
	pictureRefresh time.Duration // WithPictureRefresh; 0: none
	refreshTimeout time.Duration // bounds one re-read of votequorum
	err            error         // the first invalid option
}

const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 5 * time.Second
)

func defaultSettings() settings {
	return settings{reconnect: true, backoffMin: defaultBackoffMin, backoffMax: defaultBackoffMax,
		refreshTimeout: defaultRefreshTimeout}
}

func (s *settings) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalidParam}, args...)...)
	}
}

// option is an Option: the change it makes to the settings.
type option struct {
	f func(*settings)
}

func (o option) apply(s *settings) { o.f(s) }

type openOption struct{ option }

func (openOption) openOption() {}

type subscribeOption struct{ option }

func (subscribeOption) subscribeOption() {}

// WithBackend chooses how to reach corosync. Without it, Open uses the
// libquorum backend when the program was built with -tags libquorum, and
// the pure-Go NativeBackend otherwise.
func WithBackend(b Backend) OpenOption {
	return openOption{option{func(s *settings) {
		if b == nil {
			s.fail("WithBackend(nil): pass a Backend such as NativeBackend(), LibquorumBackend() or a SimCluster's Backend")
			return
		}
		s.backend = b
	}}}
}

// WithLossless makes a subscription lossless: up to n undelivered events are
// buffered, none is coalesced, and if the subscriber lets n events pile up
// the next one ends the subscription with a last event whose Err is
// ErrSlowConsumer (carrying the newest state). n must be at least 2, the size
// of a snapshot. Without this option, undelivered events are coalesced.
func WithLossless(n int) SubscribeOption {
	return subscribeOption{option{func(s *settings) {
		if n < 2 {
			s.fail("WithLossless(%d): the buffer must hold at least 2 events (a snapshot is a nodelist and a quorum event)", n)
			return
		}
		s.lossless = n
	}}}
}

// WithBackoff sets the delays between reconnection attempts: the first waits
// about min, each next one twice as long up to max, each with random jitter
// of up to half the delay. The defaults are 100ms and 5s.
func WithBackoff(min, max time.Duration) OpenOption {
	return openOption{option{func(s *settings) {
		if min <= 0 || max < min {
			s.fail("WithBackoff(%v, %v): want 0 < min <= max", min, max)
			return
		}
		s.backoffMin, s.backoffMax = min, max
	}}}
}

// WithoutReconnect makes a lost connection terminal: subscribers receive the
// EventDisconnected event as their last, and Open does not wait for a
// corosync that is not running or still starting.
func WithoutReconnect() OpenOption {
	return openOption{option{func(s *settings) { s.reconnect = false }}}
}

// WithTrustedUIDs lets corosync run as these uids besides root. Backends that
// can see the server's credentials refuse any other, since a local process
// can pose as corosync while it is down (its socket has no permissions).
func WithTrustedUIDs(uids ...uint32) OpenOption {
	return openOption{option{func(s *settings) {
		s.trustedUIDs = append(s.trustedUIDs[:len(s.trustedUIDs):len(s.trustedUIDs)], uids...)
	}}}
}

// WithPicture makes the Client keep the whole picture (see Picture): it opens
// connections to votequorum and cmap beside the quorum service's, and
// re-reads votequorum after every change corosync notifies. Only this
// package's backends provide it.
func WithPicture() OpenOption {
	return openOption{option{func(s *settings) { s.picture = true }}}
}

// WithPictureRefresh is WithPicture that also re-reads votequorum every d.
// corosync sends no notification when votes, expected votes or the quorum
// threshold change without quorate changing (another node's
// corosync-quorumtool -v or -e, a quorum device's vote): without a refresh,
// such a change shows at the next change that is notified. Each refresh
// costs one round trip per node, plus one.
func WithPictureRefresh(d time.Duration) OpenOption {
	return openOption{option{func(s *settings) {
		if d <= 0 {
			s.fail("WithPictureRefresh(%v): want a positive interval (leave it out for no refresh)", d)
			return
		}
		s.picture, s.pictureRefresh = true, d
	}}}
}

// openOptions and subscribeOptions let Open and (*Client).Subscribe share
// buildSettings with the package-level Subscribe.
func openOptions(opts []OpenOption) []Option {
	out := make([]Option, len(opts))
	for i, o := range opts {
		if o != nil {
			out[i] = o
		}
	}
	return out
}

func subscribeOptions(opts []SubscribeOption) []Option {
	out := make([]Option, len(opts))
	for i, o := range opts {
		if o != nil {
			out[i] = o
		}
	}
	return out
}

func buildSettings(opts []Option) (settings, error) {
	s := defaultSettings()
	for _, o := range opts {
		if o == nil {
			s.fail("nil Option")
			continue
		}
		o.apply(&s)
	}
	return s, s.err
}
