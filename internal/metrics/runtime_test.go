package metrics

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
)

// The go_* and process_* families are client_golang's Go and process collectors'
// ones: the same names, types, help texts and labels, so dashboards keep working.
func TestRuntimeFamiliesAreClientGolangs(t *testing.T) {
	pr := prometheus.NewRegistry()
	pr.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	want, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	r := promtext.NewRegistry()
	registerRuntime(r)
	got, err := promtexttest.Gather(r)
	if err != nil {
		t.Fatal(err)
	}
	if shape(got) != shape(want) {
		t.Fatalf("promtext:\n%s\nclient_golang:\n%s", shape(got), shape(want))
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range got {
		byName[mf.GetName()] = mf
	}
	value := func(name string) float64 {
		m := byName[name].GetMetric()[0]
		return m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if v := value("process_open_fds"); v < 3 {
		t.Errorf("process_open_fds = %v", v)
	}
	if v := value("process_resident_memory_bytes"); v < 1<<20 {
		t.Errorf("process_resident_memory_bytes = %v", v)
	}
	if v, err := os.Stat("/proc/self"); err == nil && value("process_start_time_seconds") < float64(v.ModTime().Unix()-60) {
		t.Errorf("process_start_time_seconds = %v, /proc/self from %v", value("process_start_time_seconds"), v.ModTime())
	}
	if v := value("go_goroutines"); v < 1 {
		t.Errorf("go_goroutines = %v", v)
	}
	if v := value("go_memstats_sys_bytes"); v < 1<<20 {
		t.Errorf("go_memstats_sys_bytes = %v", v)
	}
}

// shape is each family's name, type, help and label names, one per line.
func shape(mfs []*dto.MetricFamily) string {
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(mf.GetName() + " " + mf.GetType().String() + " " + mf.GetHelp())
		for _, l := range mf.GetMetric()[0].GetLabel() {
			b.WriteString(" " + l.GetName())
		}
		b.WriteString("\n")
	}
	return b.String()
}
