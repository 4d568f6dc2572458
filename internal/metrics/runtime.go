package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// runtimeCollector is the Go runtime's and the process's collectors (go_*, process_*),
// built on the first scrape: building the Go collector reads and converts every
// runtime/metrics description, work a starting process (an upgrade's successor) should
// not do before it is ready, and one never scraped should not do at all.
type runtimeCollector struct {
	once sync.Once
	cs   []prometheus.Collector
}

// Describe sends nothing, which registers the collector unchecked: its descriptions
// exist only once it is built. Gather still rejects duplicate or inconsistent metrics.
func (*runtimeCollector) Describe(chan<- *prometheus.Desc) {}

func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	c.once.Do(func() {
		c.cs = []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	})
	for _, x := range c.cs {
		x.Collect(ch)
	}
}
