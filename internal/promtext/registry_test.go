package promtext_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
)

const help = "A help text with a backslash \\ and a\nnewline."

// The same metrics in client_golang and in promtext must be written byte for byte
// alike: what scrapers and alert rules read does not change with the library.
func TestWritesWhatClientGolangWrites(t *testing.T) {
	pr := prometheus.NewRegistry()
	r := promtext.NewRegistry()

	pc := prometheus.NewCounter(prometheus.CounterOpts{Name: "t_total", Help: help})
	pr.MustRegister(pc)
	c := r.Counter("t_total", help)
	pc.Add(1e6 + 0.5)
	c.Add(1e6)
	c.Add(0.5)

	pv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_by_total", Help: "by"}, []string{"zeta", "alpha"})
	pr.MustRegister(pv)
	v := r.CounterVec("t_by_total", "by", "zeta", "alpha")
	for _, lv := range [][2]string{{"b", "x\"y\\z\nw"}, {"a", "2"}, {"a", "10"}, {"", ""}} {
		pv.WithLabelValues(lv[0], lv[1]).Inc()
		v.WithLabelValues(lv[0], lv[1]).Inc()
	}
	pv.WithLabelValues("a", "2").Add(3)
	v.WithLabelValues("a", "2").Add(3)
	pr.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_unused_total", Help: "never bound"}, []string{"l"}))
	r.CounterVec("t_unused_total", "never bound", "l")

	pg := prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_gauge", Help: "g"})
	pr.MustRegister(pg)
	g := r.Gauge("t_gauge", "g")
	pg.Set(-1.25e-7)
	g.Set(-1.25e-7)

	pgv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t_info", Help: "info"}, []string{"version", "goversion"})
	pr.MustRegister(pgv)
	pgv.WithLabelValues("v1", "go").Set(1)
	r.GaugeVec("t_info", "info", "version", "goversion").WithLabelValues("v1", "go").Set(1)

	for _, l := range []string{"b", "a"} {
		pr.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "t_func", Help: "f", ConstLabels: prometheus.Labels{"listener": l}}, func() float64 { return 42 }))
		r.GaugeFunc("t_func", "f", func() float64 { return 42 }, "listener", l)
	}
	pr.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "t_func_total", Help: "cf"}, func() float64 { return 7 }))
	r.CounterFunc("t_func_total", "cf", func() float64 { return 7 })

	buckets := promtext.ExponentialBuckets(50e-6, 2, 19)
	ph := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t_seconds", Help: "h", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 19)})
	pr.MustRegister(ph)
	h := r.Histogram("t_seconds", "h", buckets)
	for _, x := range []float64{0, 50e-6, 51e-6, 0.003, 0.003, 0.003, 100} {
		ph.Observe(x)
	}
	h.Observe(0)
	h.Observe(50e-6)
	h.Observe(51e-6)
	h.ObserveN(0.003, 3)
	h.Observe(100)

	pr.MustRegister(constMetric{prometheus.MustNewConstSummary(prometheus.NewDesc("t_summary_seconds", "s", nil, nil), 4, 0.25, map[float64]float64{0: 0.01, 0.5: 0.05, 1: 0.2})})
	r.SummaryFunc("t_summary_seconds", "s", func() promtext.Summary {
		return promtext.Summary{Quantiles: [][2]float64{{0, 0.01}, {0.5, 0.05}, {1, 0.2}}, Sum: 0.25, Count: 4}
	})

	want := clientGolangText(t, pr)
	var got bytes.Buffer
	if _, err := r.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Fatalf("promtext wrote\n%s\nclient_golang wrote\n%s", got.String(), want)
	}
	if _, err := promtexttest.Gather(r); err != nil {
		t.Fatalf("Prometheus's parser refuses the text: %v", err)
	}
}

type constMetric struct{ m prometheus.Metric }

func (c constMetric) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constMetric) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

func clientGolangText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestRegisteringAgain(t *testing.T) {
	r := promtext.NewRegistry()
	a := r.Counter("x_total", "x")
	if b := r.Counter("x_total", "x"); a != b {
		t.Fatal("the same counter registered twice gave two counters")
	}
	r.GaugeFunc("f", "f", func() float64 { return 1 }, "l", "a")
	for name, fn := range map[string]func(){
		"another type":       func() { r.Gauge("x_total", "x") },
		"another help":       func() { r.Counter("x_total", "y") },
		"a series twice":     func() { r.GaugeFunc("f", "f", func() float64 { return 1 }, "l", "a") },
		"an invalid name":    func() { r.Counter("1x", "x") },
		"an invalid label":   func() { r.CounterVec("y_total", "y", "__l") },
		"too many values":    func() { r.CounterVec("z_total", "z", "l").WithLabelValues("a", "b") },
		"a counter decrease": func() { a.Add(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			fn()
		}()
	}
}

// Observations while scrapes run: every scrape parses and its histogram is
// consistent (+Inf bucket = count), which -race also checks for data races.
func TestConcurrentObserveAndWrite(t *testing.T) {
	r := promtext.NewRegistry()
	h := r.Histogram("h_seconds", "h", []float64{1, 2})
	c := r.CounterVec("c_total", "c", "l")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					h.Observe(float64(i) + 0.5)
					c.WithLabelValues("a").Inc()
				}
			}
		}()
	}
	for range 50 {
		mfs, err := promtexttest.Gather(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if hh := mf.GetMetric()[0].GetHistogram(); hh != nil {
				b := hh.GetBucket()
				if last := b[len(b)-1]; last.GetCumulativeCount() != hh.GetSampleCount() {
					t.Fatalf("bucket le=%v has %d, count %d", last.GetUpperBound(), last.GetCumulativeCount(), hh.GetSampleCount())
				}
			}
		}
	}
	close(stop)
	wg.Wait()
}

func TestHandlerGzipsWhenAsked(t *testing.T) {
	r := promtext.NewRegistry()
	r.Counter("x_total", "x").Inc()
	srv := httptest.NewServer(promtext.Handler(r))
	defer srv.Close()
	for _, gz := range []bool{false, true} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = resp.Body
		if gz {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("asked for gzip, got none")
			}
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := io.ReadAll(body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != promtext.ContentType {
			t.Fatalf("Content-Type %q", ct)
		}
		if !strings.Contains(string(b), "\nx_total 1\n") {
			t.Fatalf("gzip %v: body %q", gz, b)
		}
	}
}
