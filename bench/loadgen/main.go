// Command loadgen sends AdmissionReviews to a webhook over HTTPS, either at a constant
// rate (open loop) or as fast as a fixed number of connections allows (closed loop), and
// prints what it measured as one JSON document.
//
// At a constant rate every request has a scheduled send time, start + i/rate, fixed
// before the run begins. Latency is measured from that scheduled time, not from the
// moment a connection became free, so a server that stalls is charged for every request
// that queued behind the stall (the "coordinated omission" a closed-loop tool hides).
//
// Every run is bounded: by -duration or -n, and by -grace for the requests still in
// flight when sending stops. Only loopback targets are accepted.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// target is one URL and the request that POSTs a file to it, built once.
type target struct {
	address string // host:port
	request []byte
}

type targets []target

func (t *targets) String() string { return fmt.Sprint(len(*t), " targets") }

func (t *targets) Set(value string) error {
	address, path, ok := strings.Cut(value, "=")
	if !ok {
		return errors.New("want URL=FILE")
	}
	parsed, err := url.Parse(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(parsed.Hostname()); parsed.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s: only loopback addresses are load-tested", parsed.Host)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n", parsed.RequestURI(), parsed.Host, len(body))
	*t = append(*t, target{address: parsed.Host, request: append([]byte(head), body...)})
	return nil
}

type options struct {
	targets  targets
	rate     float64
	duration time.Duration
	warmup   time.Duration
	count    int
	conns    int
	caFile   string
	timeout  time.Duration
	grace    time.Duration
	expect   string
}

type summary struct {
	Mode        string             `json:"mode"`
	Rate        float64            `json:"rate"`
	Connections int                `json:"connections"`
	Scheduled   int64              `json:"scheduled"`
	Completed   int64              `json:"completed"`
	Errors      int64              `json:"errors"`
	Dropped     int64              `json:"dropped"`
	FirstError  string             `json:"first_error,omitempty"`
	Seconds     float64            `json:"seconds"`
	Throughput  float64            `json:"throughput"`
	LatencyMs   map[string]float64 `json:"latency_ms"`
	LateStarts  int64              `json:"late_starts"`
	StartLagMs  map[string]float64 `json:"start_lag_ms"`
}

// result is one answered request: its latency and how late it left the generator.
type result struct {
	latency, lag time.Duration
}

type recorder struct {
	mu         sync.Mutex
	results    []result
	errors     atomic.Int64
	dropped    atomic.Int64
	firstError atomic.Value
	recording  atomic.Bool
}

func (r *recorder) fail(err error) {
	if !r.recording.Load() {
		return
	}
	r.errors.Add(1)
	r.firstError.CompareAndSwap(nil, err.Error())
}

func (r *recorder) add(res result) {
	if !r.recording.Load() {
		return
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
}

func tlsConfig(o *options) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile == "" {
		return config, nil
	}
	pem, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", o.caFile)
	}
	config.RootCAs = pool
	return config, nil
}

// client is one worker's keep-alive connections, one per address. It writes the
// prebuilt request and reads the answer on the same goroutine: no transport machinery
// between the schedule and the socket, so the generator adds as little as it can to
// the latency it measures. HTTP/1.1 only, as the API server speaks to webhooks.
type client struct {
	config  *tls.Config
	timeout time.Duration
	expect  []byte
	conns   map[string]*bufio.Reader
	raw     map[string]*tls.Conn
}

func newClient(o *options, config *tls.Config) *client {
	return &client{config: config, timeout: o.timeout, expect: []byte(o.expect),
		conns: map[string]*bufio.Reader{}, raw: map[string]*tls.Conn{}}
}

func (c *client) drop(address string) {
	if conn := c.raw[address]; conn != nil {
		conn.Close()
	}
	delete(c.raw, address)
	delete(c.conns, address)
}

func (c *client) send(t target) error {
	conn, reader := c.raw[t.address], c.conns[t.address]
	if conn == nil {
		dialer := &net.Dialer{Timeout: c.timeout}
		fresh, err := tls.DialWithDialer(dialer, "tcp", t.address, c.config)
		if err != nil {
			return err
		}
		conn, reader = fresh, bufio.NewReaderSize(fresh, 64*1024)
		c.raw[t.address], c.conns[t.address] = conn, reader
	}
	conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := conn.Write(t.request); err != nil {
		c.drop(t.address)
		return err
	}
	response, err := http.ReadResponse(reader, nil)
	if err != nil {
		c.drop(t.address)
		return err
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil || response.Close {
		c.drop(t.address)
	}
	if err != nil {
		return err
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", response.StatusCode, body)
	}
	if len(c.expect) > 0 && !bytes.Contains(body, c.expect) {
		return fmt.Errorf("answer lacks %q: %.200s", c.expect, body)
	}
	return nil
}

// openLoop sends at o.rate from scheduled times; it returns how many were scheduled
// while recording and the recording's length.
func openLoop(o *options, config *tls.Config, rec *recorder) (int64, time.Duration) {
	interval := time.Duration(float64(time.Second) / o.rate)
	total := o.warmup + o.duration
	planned := int(total / interval)
	if o.count > 0 {
		planned = int(o.warmup/interval) + o.count
	}
	queue := make(chan time.Time, planned+1)
	var wg sync.WaitGroup
	start := time.Now()
	hardStop := start.Add(total + o.grace)
	if o.count > 0 {
		hardStop = start.Add(time.Duration(planned)*interval + o.grace)
	}

	warmupEnd := start.Add(o.warmup)
	rec.recording.Store(true)
	for w := 0; w < o.conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(o, config)
			i := w
			for scheduled := range queue {
				// Answers to requests scheduled in the warm-up are not recorded.
				measured := !scheduled.Before(warmupEnd)
				if time.Now().After(hardStop) {
					if measured {
						rec.dropped.Add(1)
					}
					continue
				}
				lag := time.Since(scheduled)
				err := c.send(o.targets[i%len(o.targets)])
				i += o.conns
				switch {
				case !measured:
				case err != nil:
					rec.fail(err)
				default:
					rec.add(result{latency: time.Since(scheduled), lag: lag})
				}
			}
		}()
	}

	var recordingStart time.Time
	var scheduledWhileRecording int64
	// NB: the runtime's timers sleep in epoll_wait, whose timeout is in whole
	// milliseconds, so time.Sleep wakes up to a millisecond late, and that lateness would
	// be charged to the server. The dispatcher sleeps in nanosleep on a thread of its own
	// instead (main raised GOMAXPROCS so the workers keep a P meanwhile).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := 0; i < planned; i++ {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			pause := syscall.NsecToTimespec(int64(wait))
			for syscall.Nanosleep(&pause, &pause) == syscall.EINTR {
			}
		}
		if !at.Before(warmupEnd) {
			if recordingStart.IsZero() {
				recordingStart = at
			}
			scheduledWhileRecording++
		}
		queue <- at
	}
	sendingEnd := time.Now()
	close(queue)
	wg.Wait()
	if recordingStart.IsZero() {
		return scheduledWhileRecording, 0
	}
	return scheduledWhileRecording, sendingEnd.Sub(recordingStart)
}

// closedLoop keeps o.conns requests in flight until o.count are answered or
// o.duration has passed.
func closedLoop(o *options, config *tls.Config, rec *recorder) (int64, time.Duration) {
	var issued atomic.Int64
	var wg sync.WaitGroup
	limit := int64(o.count)
	rec.recording.Store(true)
	start := time.Now()
	deadline := start.Add(o.duration)
	for w := 0; w < o.conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(o, config)
			for {
				n := issued.Add(1)
				if (limit > 0 && n > limit) || time.Now().After(deadline) {
					return
				}
				began := time.Now()
				if err := c.send(o.targets[int(n-1)%len(o.targets)]); err != nil {
					rec.fail(err)
					continue
				}
				rec.add(result{latency: time.Since(began)})
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	scheduled := issued.Load() - int64(o.conns)
	if limit > 0 && scheduled > limit {
		scheduled = limit
	}
	return scheduled, elapsed
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(math.Ceil(q*float64(len(sorted)))) - 1
	if index < 0 {
		index = 0
	}
	return float64(sorted[index]) / float64(time.Millisecond)
}

func summarise(o *options, rec *recorder, scheduled int64, elapsed time.Duration) summary {
	latencies := make([]time.Duration, len(rec.results))
	lags := make([]time.Duration, len(rec.results))
	var sum time.Duration
	var late int64
	for i, r := range rec.results {
		latencies[i], lags[i] = r.latency, r.lag
		sum += r.latency
		if r.lag > time.Millisecond {
			late++
		}
	}
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	sort.Slice(lags, func(a, b int) bool { return lags[a] < lags[b] })
	mode := "constant-rate"
	if o.rate == 0 {
		mode = "closed-loop"
	}
	s := summary{
		Mode:        mode,
		Rate:        o.rate,
		Connections: o.conns,
		Scheduled:   scheduled,
		Completed:   int64(len(latencies)),
		Errors:      rec.errors.Load(),
		Dropped:     rec.dropped.Load(),
		Seconds:     elapsed.Seconds(),
		LatencyMs:   map[string]float64{},
		LateStarts:  late,
		StartLagMs:  map[string]float64{},
	}
	if first, ok := rec.firstError.Load().(string); ok {
		s.FirstError = first
	}
	if elapsed > 0 {
		s.Throughput = float64(s.Completed) / elapsed.Seconds()
	}
	if len(latencies) > 0 {
		s.LatencyMs["mean"] = float64(sum) / float64(len(latencies)) / float64(time.Millisecond)
		for name, q := range map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999} {
			s.LatencyMs[name] = percentile(latencies, q)
		}
		s.LatencyMs["max"] = float64(latencies[len(latencies)-1]) / float64(time.Millisecond)
		if o.rate > 0 {
			s.StartLagMs["p50"], s.StartLagMs["p99"] = percentile(lags, 0.5), percentile(lags, 0.99)
		}
	}
	return s
}

func main() {
	o := &options{}
	flag.Var(&o.targets, "target", "URL=FILE: POST FILE to URL (repeat to round-robin)")
	flag.Float64Var(&o.rate, "rate", 0, "requests per second, open loop; 0 for closed loop")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to record (closed loop: the time limit)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "constant-rate sending before recording starts")
	flag.IntVar(&o.count, "n", 0, "stop after this many requests (0: by -duration)")
	flag.IntVar(&o.conns, "conns", 16, "connections (keep-alive) and requests in flight at most")
	flag.StringVar(&o.caFile, "cacert", "", "PEM file of the CA that signed the server's certificate")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.DurationVar(&o.grace, "grace", 15*time.Second, "after sending stops, how long answers are awaited")
	flag.StringVar(&o.expect, "expect", `"allowed"`, "every answer must contain this")
	flag.Parse()
	if len(o.targets) == 0 || o.conns < 1 || o.rate < 0 || o.duration <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	config, err := tlsConfig(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2) // one for the dispatcher's sleeps, see openLoop
	}
	rec := &recorder{}
	var scheduled int64
	var elapsed time.Duration
	if o.rate > 0 {
		scheduled, elapsed = openLoop(o, config, rec)
	} else {
		scheduled, elapsed = closedLoop(o, config, rec)
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(summarise(o, rec, scheduled, elapsed)); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
