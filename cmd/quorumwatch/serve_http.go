package main

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/corosync-go/quorum"
)

//go:embed web
var webFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(webFiles, "web/index.html"))

// maxStreams bounds the open event streams: each holds a connection and a
// goroutine, and a page needs one.
const maxStreams = 256

// handler routes every endpoint. No handler calls corosync: they read the
// Client's cached picture (s.picture) or what the watch goroutines keep.
func (s *server) handler() http.Handler {
	// Never compressed: a few KiB of text, whose compression cost half a
	// scrape's CPU (docs/benchmarks.md) to save less than a packet.
	var metrics http.Handler
	if s.cfg.noSelfMetrics {
		metrics = newMetricsHandler(s, s.cfg.haCompat, nil)
	} else {
		self := prometheus.NewRegistry()
		self.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics = promhttp.InstrumentMetricHandler(self, newMetricsHandler(s, s.cfg.haCompat, self))
	}
	static, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+s.cfg.telemetryPath, metrics)
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /api/picture", s.servePicture)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "quorumwatch is serving")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// servePictureJSON is the picture's JSON as quorumwatch --picture --json
// prints it, but for a picture whose re-read failed: its quorate is then
// the last corosync said before it stopped answering, which may no longer
// be true, so the server says unknown there as in its metrics and health.
func servePictureJSON(p quorum.Picture) jsonPicture {
	j := pictureJSON(p)
	if !known(p) {
		j.State, j.Quorate = "unknown", false
	}
	return j
}

// healthJSON is the health endpoint's body.
type healthJSON struct {
	Status  string `json:"status"` // quorate, inquorate or unknown
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
	// StateAgeSeconds is the time since the engine learnt the picture
	// (null before the first read).
	StateAgeSeconds *float64    `json:"state_age_seconds"`
	Picture         jsonPicture `json:"picture"`
}

func (s *server) serveHealth(w http.ResponseWriter, r *http.Request) {
	p := s.picture()
	v := verdictOf(p)
	body := healthJSON{Status: v.status, Healthy: v.healthy(), Reason: v.reason, Picture: servePictureJSON(p)}
	if !p.Time.IsZero() {
		age := time.Since(p.Time).Seconds()
		body.StateAgeSeconds = &age
	}
	code := http.StatusOK
	if !v.healthy() {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

func (s *server) servePicture(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, servePictureJSON(s.picture()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := encodeJSON(&buf, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// pageJSON is the status page's state: the event stream's data, and what
// the server-rendered page shows.
type pageJSON struct {
	Status  string       `json:"status"`
	Word    string       `json:"word"`    // the verdict for people
	Reason  string       `json:"reason"`  // why not quorate, or why unknown
	Summary string       `json:"summary"` // members and votes, one line
	Picture jsonPicture  `json:"picture"`
	Changes []changeJSON `json:"changes"` // newest first
}

type changeJSON struct {
	Time   string `json:"time"`
	Status string `json:"status"`
	Text   string `json:"text"`
}

// pageStateLocked is the page's state from the picture stream's newest
// value and the change log.
func (s *server) pageStateLocked() pageJSON {
	p := s.cur
	v := verdictOf(p)
	st := pageJSON{Status: v.status, Reason: v.reason, Picture: servePictureJSON(p), Changes: []changeJSON{}}
	st.Word = map[string]string{"quorate": "Quorate", "inquorate": "Not quorate", "unknown": "Unknown"}[v.status]
	if p.Connected {
		st.Summary = fmt.Sprintf("%d of %d nodes are members", len(p.Members()), len(p.Nodes))
		if p.Provider != "" {
			st.Summary += fmt.Sprintf(" · %d votes present, %d needed, %d expected", p.TotalVotes, p.Quorum, p.ExpectedVotes)
		}
	}
	for i := len(s.history.entries) - 1; i >= 0; i-- {
		c := s.history.entries[i]
		st.Changes = append(st.Changes, changeJSON{Time: c.time.UTC().Format(time.RFC3339Nano), Status: c.status, Text: c.text})
	}
	return st
}

// pageData is what web/index.html renders.
type pageData struct {
	pageJSON
	TelemetryPath string
	Qdevice       *jsonQdevice
	Rendered      string
}

func (s *server) servePage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.pageStateLocked()
	s.mu.Unlock()
	d := pageData{pageJSON: st, TelemetryPath: strings.TrimPrefix(s.cfg.telemetryPath, "/"),
		Qdevice: st.Picture.Qdevice, Rendered: time.Now().UTC().Format(time.RFC3339)}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		s.log.Error("rendering the page", "err", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// sseSub is one event stream. Its channel holds one message: a newer one
// replaces it, since each message is the whole state.
type sseSub struct{ ch chan []byte }

// subscribe registers an event stream and returns its first message, the
// current state, both under one lock so that no broadcast falls between.
func (s *server) subscribe() (*sseSub, []byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) >= maxStreams {
		return nil, nil, false
	}
	sub := &sseSub{ch: make(chan []byte, 1)}
	s.subs[sub] = struct{}{}
	return sub, s.messageLocked(), true
}

func (s *server) unsubscribe(sub *sseSub) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// messageLocked is the current state as one server-sent event.
func (s *server) messageLocked() []byte {
	s.msgID++
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "id: %d\nevent: state\ndata: ", s.msgID)
	if err := encodeJSON(&buf, s.pageStateLocked()); err != nil {
		s.log.Error("encoding the page state", "err", err)
	}
	// encodeJSON ends the data line; a blank line ends the event.
	buf.WriteByte('\n')
	return buf.Bytes()
}

// broadcastLocked sends the current state to every event stream without
// waiting for any.
func (s *server) broadcastLocked() {
	if len(s.subs) == 0 {
		return
	}
	msg := s.messageLocked()
	for sub := range s.subs {
		for {
			select {
			case sub.ch <- msg:
			default:
				select {
				case <-sub.ch: // replaced by the newer state
				default:
				}
				continue
			}
			break
		}
	}
}

// serveEvents streams the page's state: at once, then at every change
// corosync reports. Nothing is sent in between (no keep-alive, so an idle
// server stays idle); EventSource reconnects by itself if a proxy cuts the
// stream, and its first message is the whole state again.
func (s *server) serveEvents(w http.ResponseWriter, r *http.Request) {
	sub, first, ok := s.subscribe()
	if !ok {
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	defer s.unsubscribe(sub)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold the stream back
	w.WriteHeader(http.StatusOK)
	send := func(msg []byte) bool {
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(append([]byte("retry: 2000\n"), first...)) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case msg := <-sub.ch:
			if !send(msg) {
				return
			}
		}
	}
}
