package main

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/corosync-go/quorum"
)

// namespace prefixes quorumwatch's own metrics.
const namespace = "corosync_quorum"

// collector makes the metrics of one state (the Client's cached picture
// and the server's counters), without calling corosync, so that a frozen
// corosync never holds a scrape. docs/exporter.md lists every metric. The
// metrics that move with the clock are not here but in clockFamilies: the
// collector's output changes only with the state, so metricsHandler keeps
// it between changes.
type collector struct {
	ha  bool
	now metricState // what Collect collects; set by metricsHandler under its mu

	up, connected, syncing, quorate, provider, nodeID        *prometheus.Desc
	expected, highest, total, threshold                      *prometheus.Desc
	flag, members, ringSeq, ringNode                         *prometheus.Desc
	nodeVotes, nodeMember, nodeState                         *prometheus.Desc
	qdRegistered, qdAlive, qdCastVote, qdMasterWins, qdVotes *prometheus.Desc
	ringChanges, memberChanges, transitions, disconnections  *prometheus.Desc
	overflows, lastChange                                    *prometheus.Desc
	haQuorate, haQuorumVotes, haMemberVotes, haOK            *prometheus.Desc
}

func newCollector(ha bool) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	node := []string{"node_id", "name"}
	c := &collector{
		ha:        ha,
		up:        d("up", "1 when the state is known: connected to corosync, which answers; 0 while connecting, disconnected, or when corosync does not answer a re-read (frozen or overloaded)."),
		connected: d("connected", "1 while connected to corosync and its state has been read (even if a later re-read went unanswered)."),
		syncing:   d("syncing", "1 while the votes, thresholds and flags are being re-read after a change; ring, members and quorate are current."),
		quorate:   d("quorate", "1 when this node's partition is quorate; 0 when it is not or when the state is unknown (see corosync_quorum_up)."),
		provider:  d("provider_configured", "1 when corosync has a quorum provider (votequorum); without one corosync calls every partition quorate."),
		nodeID:    d("local_node_id", "This node's corosync node id."),
		expected:  d("expected_votes", "This node's expected votes (corosync-quorumtool's Expected votes)."),
		highest:   d("highest_expected_votes", "The highest expected votes among the members (Highest expected)."),
		total:     d("total_votes", "The votes present in this partition, the quorum device's included when it votes (Total votes)."),
		threshold: d("threshold_votes", "The votes needed for quorum (corosync-quorumtool's Quorum)."),
		flag:      d("flag", "votequorum's flags, 1 when set: two_node, quorate (votequorum's own view; clear means activity blocked), wait_for_all, last_man_standing, auto_tie_breaker, allow_downscale, qdevice (a quorum device is registered).", "flag"),
		members:   d("members", "The number of nodes in this node's membership."),
		ringSeq:   d("ring_sequence", "The sequence number of the current ring (corosync's ring id, after the dot); it grows at every new ring."),
		ringNode:  d("ring_node_id", "The node id that names the current ring (corosync's ring id, before the dot)."),
		nodeVotes: d("node_votes", "The votes of each node known (configured, or seen by votequorum).", node...),
		nodeMember: d("node_member",
			"1 when the node is in this node's membership.", node...),
		nodeState: d("node_state", "The node's state in votequorum, 1 for the current one: member, dead (seen before, gone), leaving, not-seen (configured, never seen since corosync started).",
			append(node, "state")...),
		qdRegistered: d("qdevice_registered", "1 when a quorum device is registered on this node."),
		qdAlive:      d("qdevice_alive", "1 when this node's quorum device polls votequorum in time."),
		qdCastVote:   d("qdevice_cast_vote", "1 when this node's quorum device casts its vote for this partition."),
		qdMasterWins: d("qdevice_master_wins", "1 when this node's quorum device asked for master_wins."),
		qdVotes:      d("qdevice_votes", "The votes the quorum device is configured to cast (0 without a device)."),
		ringChanges:  d("ring_changes_total", "New rings corosync reported, re-formed rings with the same members included."),
		memberChanges: d("membership_changes_total",
			"New rings whose members differ from the ring before (or where a node restarted within the ring); counted across reconnections."),
		transitions: d("transitions_total", "Changes of quorate between two known states, by the state reached.", "to"),
		disconnections: d("disconnections_total",
			"Times the connection to corosync was lost (corosync stopped or restarted)."),
		overflows: d("event_overflows_total",
			"Times the lossless subscription behind the counters fell behind and was renewed: the counters may have missed changes then."),
		lastChange: d("last_change_timestamp_seconds", "When the engine learnt the current state (a change notified, a reconnection, a failed re-read), as a Unix time."),
	}
	if ha {
		h := func(name, help string, labels ...string) *prometheus.Desc {
			return prometheus.NewDesc("ha_cluster_"+name, help, labels, nil)
		}
		c.haQuorate = h("corosync_quorate", "Whether or not the cluster is quorate")
		c.haQuorumVotes = h("corosync_quorum_votes", "Cluster quorum votes; one line per type", "type")
		c.haMemberVotes = h("corosync_member_votes", "How many votes each member node has contributed with to the current quorum", "node_id", "node", "local")
		c.haOK = prometheus.NewDesc("ha_cluster_scrape_success", "Whether a collector succeeded.", nil, prometheus.Labels{"collector": "corosync"})
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.connected, c.syncing, c.quorate, c.provider, c.nodeID,
		c.expected, c.highest, c.total, c.threshold, c.flag, c.members, c.ringSeq, c.ringNode,
		c.nodeVotes, c.nodeMember, c.nodeState, c.qdRegistered, c.qdAlive, c.qdCastVote, c.qdMasterWins, c.qdVotes,
		c.ringChanges, c.memberChanges, c.transitions, c.disconnections, c.overflows, c.lastChange} {
		ch <- d
	}
	if c.ha {
		for _, d := range []*prometheus.Desc{c.haQuorate, c.haQuorumVotes, c.haMemberVotes, c.haOK} {
			ch <- d
		}
	}
}

// flagNames are corosync.conf's words for votequorum's flags.
var flagNames = []struct {
	f    quorum.VoteFlags
	name string
}{{quorum.FlagTwoNode, "two_node"}, {quorum.FlagQuorate, "quorate"}, {quorum.FlagWaitForAll, "wait_for_all"},
	{quorum.FlagLastManStanding, "last_man_standing"}, {quorum.FlagAutoTieBreaker, "auto_tie_breaker"},
	{quorum.FlagAllowDownscale, "allow_downscale"}, {quorum.FlagQdevice, "qdevice"}}

var nodeStates = []quorum.NodeState{quorum.NodeMember, quorum.NodeDead, quorum.NodeLeaving, quorum.NodeNotSeen}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	p, k := c.now.p, c.now.k
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ok := known(p)
	gauge(c.up, b2f(ok))
	gauge(c.connected, b2f(p.Connected))
	gauge(c.quorate, b2f(ok && p.Quorate))
	counter(c.ringChanges, k.ringChanges)
	counter(c.memberChanges, k.membershipChanges)
	counter(c.transitions, k.toQuorate, "quorate")
	counter(c.transitions, k.toInquorate, "inquorate")
	counter(c.disconnections, k.disconnections)
	counter(c.overflows, k.overflows)
	if !p.Time.IsZero() {
		gauge(c.lastChange, float64(p.Time.UnixNano())/1e9)
	}
	// The rest only while the state is known: the last values of a lost
	// or silent corosync would be reported as if current.
	if ok {
		gauge(c.syncing, b2f(p.Syncing))
		gauge(c.provider, b2f(p.Provider != ""))
		gauge(c.members, float64(len(p.Members())))
		gauge(c.ringSeq, float64(p.RingID.Seq))
		gauge(c.ringNode, float64(p.RingID.NodeID))
		if p.Provider != "" {
			gauge(c.nodeID, float64(p.NodeID))
			gauge(c.expected, float64(p.ExpectedVotes))
			gauge(c.highest, float64(p.HighestExpected))
			gauge(c.total, float64(p.TotalVotes))
			gauge(c.threshold, float64(p.Quorum))
			for _, f := range flagNames {
				gauge(c.flag, b2f(p.Flags&f.f != 0), f.name)
			}
			q := p.Qdevice
			gauge(c.qdRegistered, b2f(q.Registered))
			gauge(c.qdAlive, b2f(q.Alive))
			gauge(c.qdCastVote, b2f(q.CastVote))
			gauge(c.qdMasterWins, b2f(q.MasterWins))
			gauge(c.qdVotes, float64(q.Votes))
		}
		for _, n := range p.Nodes {
			id := strconv.FormatUint(uint64(n.ID), 10)
			gauge(c.nodeVotes, float64(n.Votes), id, n.Name)
			gauge(c.nodeMember, b2f(n.State == quorum.NodeMember), id, n.Name)
			for _, st := range nodeStates {
				gauge(c.nodeState, b2f(n.State == st), id, n.Name, st.String())
			}
		}
	}
	if c.ha {
		c.collectHA(ch, p)
	}
}

// collectHA exports what ha_cluster_exporter's corosync collector exports
// from `corosync-quorumtool -p`, with its names, labels and values. Where
// that tool fails (corosync not running, or not answering) ha_cluster_exporter
// exports none of its corosync metrics and ha_cluster_scrape_success 0: so
// does this, while the state is unknown. Its rings and ring_errors come from
// corosync-cfgtool's link status, which the picture does not have: they are
// not exported. Its scrape duration is one of the clockFamilies.
func (c *collector) collectHA(ch chan<- prometheus.Metric, p quorum.Picture) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ok := known(p)
	if ok {
		gauge(c.haQuorate, b2f(p.Quorate))
		if p.Provider != "" {
			gauge(c.haQuorumVotes, float64(p.ExpectedVotes), "expected_votes")
			gauge(c.haQuorumVotes, float64(p.HighestExpected), "highest_expected")
			gauge(c.haQuorumVotes, float64(p.TotalVotes), "total_votes")
			gauge(c.haQuorumVotes, float64(p.Quorum), "quorum")
			// The tool's membership table: the members, then a row
			// for the quorum device (node id 0) when any member has
			// one registered, with its votes only while this node's
			// device casts them.
			qd := false
			for _, n := range p.Nodes {
				if n.State != quorum.NodeMember {
					continue
				}
				qd = qd || n.Qdevice.Registered
				gauge(c.haMemberVotes, float64(n.Votes), strconv.FormatUint(uint64(n.ID), 10), n.Name, strconv.FormatBool(n.Local))
			}
			if qd {
				votes := uint32(0)
				if p.Qdevice.CastVote {
					votes = p.Qdevice.Votes
				}
				gauge(c.haMemberVotes, float64(votes), "0", p.Qdevice.Name, "false")
			}
		}
	}
	gauge(c.haOK, b2f(ok))
}

// metricState is what the metrics are made of.
type metricState struct {
	p quorum.Picture
	k tally
}

// stateNow reads the state a scrape serves.
func (s *server) stateNow() metricState {
	p := s.picture()
	s.mu.Lock()
	defer s.mu.Unlock()
	return metricState{p: p, k: s.counts.tally}
}

// stateKey tells two states' metrics apart. The engine gives every picture
// it publishes a new Time; what changes without one (a closed Client, why
// there is no Client yet) changes the picture's Err.
type stateKey struct {
	at  int64
	err string
	k   tally
}

func (st metricState) key() stateKey {
	k := stateKey{at: st.p.Time.UnixNano(), k: st.k}
	if st.p.Err != nil {
		k.err = st.p.Err.Error()
	}
	return k
}

// textFormat is the one exposition format served: Prometheus's text
// format, which every Prometheus version accepts whatever else it asks
// for first. The metric names are all valid legacy names, so the
// escaping a scraper asks for changes nothing in the text.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// metricsHandler serves the telemetry path. Between two changes of the
// state only the state's age moves (and, with --compat.ha-cluster-exporter,
// the scrape's duration): the collector's families are encoded once per
// change and kept, and a scrape writes that text, then encodes the
// clockFamilies and, unless --web.disable-exporter-metrics, the Go
// runtime's and the process's families. A scrape of an unchanged state
// therefore costs a copy of a few KiB, not a gathering and an encoding of
// every series (docs/benchmarks.md). Safe for concurrent scrapes.
type metricsHandler struct {
	s    *server
	ha   bool
	self prometheus.Gatherer // go_*, process_*, promhttp_*; nil when disabled
	bufs sync.Pool           // of *bytes.Buffer, in which answers are made

	mu   sync.Mutex // guards the fields below, and col.now during reg.Gather
	col  *collector
	reg  *prometheus.Registry // col alone
	key  stateKey
	text []byte // col's families for key, encoded; nil until the first scrape
}

func newMetricsHandler(s *server, ha bool, self prometheus.Gatherer) *metricsHandler {
	col := newCollector(ha)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	return &metricsHandler{s: s, ha: ha, self: self, col: col, reg: reg,
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := h.s.stateNow()
	buf := h.bufs.Get().(*bytes.Buffer)
	defer h.bufs.Put(buf)
	buf.Reset()
	if err := h.encodeState(buf, st); err != nil {
		h.fail(w, err)
		return
	}
	enc := expfmt.NewEncoder(buf, textFormat)
	for _, mf := range h.clockFamilies(st.p, start) {
		if err := enc.Encode(mf); err != nil {
			h.fail(w, err)
			return
		}
	}
	if h.self != nil {
		mfs, err := h.self.Gather()
		if err != nil {
			h.fail(w, err)
			return
		}
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				h.fail(w, err)
				return
			}
		}
	}
	w.Header().Set("Content-Type", string(textFormat))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// encodeState appends the collector's families for st to buf, encoding
// them only when st differs from the state encoded last.
func (h *metricsHandler) encodeState(buf *bytes.Buffer, st metricState) error {
	key := st.key()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.text == nil || key != h.key {
		h.col.now = st
		mfs, err := h.reg.Gather()
		h.col.now = metricState{} // the picture's node list is not kept
		if err != nil {
			return err
		}
		var text bytes.Buffer
		enc := expfmt.NewEncoder(&text, textFormat)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		h.key, h.text = key, text.Bytes()
	}
	buf.Write(h.text)
	return nil
}

func (h *metricsHandler) fail(w http.ResponseWriter, err error) {
	h.s.log.Error("making the metrics", "err", err)
	http.Error(w, "making the metrics: "+err.Error(), http.StatusInternalServerError)
}

// Names and help of the clockFamilies, which docs/exporter.md lists with the
// collector's.
const (
	ageName    = namespace + "_state_age_seconds"
	ageHelp    = "Seconds since the engine learnt the current state. A periodic re-read that finds nothing new does not reset it."
	haDurName  = "ha_cluster_scrape_duration_seconds"
	haDurHelp  = "Duration of a collector scrape."
	haCollName = "collector"
)

// clockFamilies are the metrics that move with the clock rather than with
// the state: the state's age, and ha_cluster_exporter's scrape duration
// (here, the time to make this answer's state families).
func (h *metricsHandler) clockFamilies(p quorum.Picture, start time.Time) []*dto.MetricFamily {
	var fams []*dto.MetricFamily
	if !p.Time.IsZero() {
		fams = append(fams, gaugeFamily(ageName, ageHelp, time.Since(p.Time).Seconds()))
	}
	if h.ha {
		fams = append(fams, gaugeFamily(haDurName, haDurHelp, time.Since(start).Seconds(),
			&dto.LabelPair{Name: ptr(haCollName), Value: ptr("corosync")}))
	}
	return fams
}

// gaugeFamily is a family of one gauge.
func gaugeFamily(name, help string, v float64, labels ...*dto.LabelPair) *dto.MetricFamily {
	return &dto.MetricFamily{Name: ptr(name), Help: ptr(help), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Label: labels, Gauge: &dto.Gauge{Value: &v}}}}
}

func ptr[T any](v T) *T { return &v }
