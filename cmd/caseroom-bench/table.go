package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

func tableMain(args []string) error {
	var rs []map[string]any
	for _, name := range args {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := strings.TrimPrefix(sc.Text(), "RESULT ")
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				rs = append(rs, m)
			}
		}
		fh.Close()
	}
	printTable(os.Stdout, rs)
	return nil
}

func f1(v any, format string) string {
	x, ok := v.(float64)
	if !ok {
		if i, ok := v.(int); ok {
			x = float64(i)
		} else {
			return "–"
		}
	}
	return fmt.Sprintf(format, x)
}

// printTable prints one row per phase of each result.
func printTable(w io.Writer, rs []map[string]any) {
	fmt.Fprintln(w, "| run | db | phase | conns | offered posts/s | posts/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | post ack p99 ms | server cores | db cores | server µs/delivery | KiB/conn | resume s | gaps/dups/missing | disconnects | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		phases, _ := r["phases"].([]any)
		for _, p := range phases {
			ph, _ := p.(map[string]any)
			if ph == nil {
				continue
			}
			fmt.Fprintf(w, "| %v | %v | %v | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s/%s | %s | %s |\n",
				r["label"], r["database"], ph["phase"], f1(r["connected"], "%.0f"), f1(ph["offered_posts_per_sec"], "%.0f"),
				f1(ph["posts_per_sec"], "%.0f"), f1(ph["deliveries_per_sec"], "%.0f"), f1(ph["p50_ms"], "%.2f"),
				f1(ph["p99_ms"], "%.2f"), f1(ph["p999_ms"], "%.2f"), f1(ph["ack_p99_ms"], "%.2f"), f1(ph["server_cores"], "%.2f"),
				f1(ph["db_cores"], "%.2f"), f1(ph["server_cpu_us_per_delivery"], "%.1f"), f1(ph["kib_per_conn"], "%.1f"),
				f1(ph["resume_secs"], "%.2f"), f1(r["gaps"], "%.0f"), f1(r["dups"], "%.0f"), f1(r["verify_missing"], "%.0f"),
				f1(r["disconnects"], "%.0f"), f1(num(r, "post_errors")+num(r, "rate_limited")+num(ph, "rooms_bad"), "%.0f"))
		}
	}
}
