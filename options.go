package quorum

import (
	"fmt"
	"time"
)

// Option configures Open, Subscribe and (*Client).Subscribe. Options that
// shape a connection (WithBackend, WithBackoff, WithoutReconnect,
// WithTrustedUIDs) belong to Open; options that shape a subscription
// (WithLossless) belong to (*Client).Subscribe; the package-level Subscribe,
// which makes both, takes either. An option given where it has no effect is
// an error matching ErrInvalidParam, not silently ignored.
type Option interface {
	apply(*settings)
	name() string
	connLevel() bool
}

type settings struct {
	backend     Backend
	lossless    int // 0: coalesce to latest
	reconnect   bool
	backoffMin  time.Duration
	backoffMax  time.Duration
	trustedUIDs []uint32
	err         error // the first invalid option
}

const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 5 * time.Second
)

func defaultSettings() settings {
	return settings{reconnect: true, backoffMin: defaultBackoffMin, backoffMax: defaultBackoffMax}
}

func (s *settings) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalidParam}, args...)...)
	}
}

type option struct {
	n    string
	conn bool
	f    func(*settings)
}

func (o option) apply(s *settings) { o.f(s) }
func (o option) name() string      { return o.n }
func (o option) connLevel() bool   { return o.conn }

// WithBackend chooses how to reach corosync. Without it, Open uses the
// libquorum backend when the program was built with -tags libquorum, and
// the pure-Go NativeBackend otherwise.
func WithBackend(b Backend) Option {
	return option{"WithBackend", true, func(s *settings) {
		if b == nil {
			s.fail("WithBackend(nil): pass a Backend such as NativeBackend(), LibquorumBackend() or a SimCluster's Backend")
			return
		}
		s.backend = b
	}}
}

// WithLossless makes a subscription lossless: up to n undelivered events are
// buffered, none is coalesced, and if the subscriber lets n events pile up
// the next one ends the subscription with a last event whose Err is
// ErrSlowConsumer (carrying the newest state). n must be at least 2, the size
// of a snapshot. Without this option, undelivered events are coalesced.
func WithLossless(n int) Option {
	return option{"WithLossless", false, func(s *settings) {
		if n < 2 {
			s.fail("WithLossless(%d): the buffer must hold at least 2 events (a snapshot is a nodelist and a quorum event)", n)
			return
		}
		s.lossless = n
	}}
}

// WithBackoff sets the delays between reconnection attempts: the first waits
// about min, each next one twice as long up to max, each with random jitter
// of up to half the delay. The defaults are 100ms and 5s.
func WithBackoff(min, max time.Duration) Option {
	return option{"WithBackoff", true, func(s *settings) {
		if min <= 0 || max < min {
			s.fail("WithBackoff(%v, %v): want 0 < min <= max", min, max)
			return
		}
		s.backoffMin, s.backoffMax = min, max
	}}
}

// WithoutReconnect makes a lost connection terminal: subscribers receive the
// EventDisconnected event as their last, and Open does not wait for a
// corosync that is not running or still starting.
func WithoutReconnect() Option {
	return option{"WithoutReconnect", true, func(s *settings) { s.reconnect = false }}
}

// WithTrustedUIDs lets corosync run as these uids besides root. Backends that
// can see the server's credentials refuse any other, since a local process
// can pose as corosync while it is down (its socket has no permissions).
func WithTrustedUIDs(uids ...uint32) Option {
	return option{"WithTrustedUIDs", true, func(s *settings) {
		s.trustedUIDs = append(s.trustedUIDs[:len(s.trustedUIDs):len(s.trustedUIDs)], uids...)
	}}
}

// scope says which call the options are for.
type scope uint8

const (
	forOpen            scope = iota // connection options only
	forClientSubscribe              // subscription options only
	forSubscribe                    // both
)

func buildSettings(opts []Option, sc scope) (settings, error) {
	s := defaultSettings()
	for _, o := range opts {
		switch {
		case o == nil:
			s.fail("nil Option")
		case o.connLevel() && sc == forClientSubscribe:
			s.fail("%s configures a connection: pass it to Open, not to (*Client).Subscribe", o.name())
		case !o.connLevel() && sc == forOpen:
			s.fail("%s configures a subscription: pass it to (*Client).Subscribe, not to Open", o.name())
		default:
			o.apply(&s)
		}
	}
	return s, s.err
}
