package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes the results as an aligned text table, then the fake
// backend and memory figures.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "implementation\treq/s\t×ref\tp50\tp90\tp99\terrors\tpeak RSS\tCPU/req\t")
	for _, res := range r.Results {
		if res.Skipped != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t (skipped: %s)\n", res.Name, res.Skipped)
			continue
		}
		c := cells(res)
		fmt.Fprintln(tw, strings.Join(c, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r.writeExtras(w, "")
	return nil
}

// WriteMarkdown writes the same as a Markdown table.
func (r *Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| implementation | req/s | ×ref | p50 | p90 | p99 | errors | peak RSS | CPU/req |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range r.Results {
		if res.Skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s | | | | | | | |\n", res.Name, res.Skipped)
			continue
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells(res), " | "))
	}
	fmt.Fprintln(w)
	r.writeExtras(w, "- ")
	return nil
}

func cells(res Result) []string {
	ratio, rss, cpu := "-", "-", "-"
	if res.Ratio > 0 {
		ratio = fmt.Sprintf("%.2f", res.Ratio)
	}
	if res.PeakRSS > 0 {
		rss = mib(res.PeakRSS)
	}
	if res.CPUPerRequest > 0 {
		cpu = fmt.Sprintf("%.0f µs", float64(res.CPUPerRequest)/float64(time.Microsecond))
	}
	return []string{res.Name, fmt.Sprintf("%.0f", res.Rate), ratio, ms(res.P50), ms(res.P90), ms(res.P99),
		fmt.Sprint(res.Errors), rss, cpu}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r *Report) writeExtras(w io.Writer, bullet string) {
	if fb := r.FakeBackend; fb != nil {
		fmt.Fprintf(w, "%sfake backend %.0f req/s, net/http hello-world %.0f req/s: median ratio %.2f (rounds %.2f)\n",
			bullet, fb.FakeBackendRate, fb.NetHTTPRate, fb.Ratio, fb.Rounds)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "%s`proxyspec proxy` RSS at start: %s\n", bullet, mib(m.StartRSS))
		fmt.Fprintf(w, "%s%d MiB request body: peak RSS %s, %.1f s (%.0f MiB/s)\n", bullet,
			m.Upload.Bytes>>20, mib(m.Upload.PeakRSS), m.Upload.Seconds, float64(m.Upload.Bytes>>20)/m.Upload.Seconds)
		fmt.Fprintf(w, "%s%d MiB response body: peak RSS %s, %.1f s (%.0f MiB/s)\n", bullet,
			m.Download.Bytes>>20, mib(m.Download.PeakRSS), m.Download.Seconds, float64(m.Download.Bytes>>20)/m.Download.Seconds)
		fmt.Fprintf(w, "%s%d idle client connections: RSS %s (peak %s), %.1f KiB per connection, opened in %.1f s\n", bullet,
			m.Idle.Conns, mib(m.Idle.RSS), mib(m.Idle.PeakRSS), float64(m.Idle.PerConn)/1024, m.Idle.Seconds)
	}
}
