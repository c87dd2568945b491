package benchkit

import (
	"testing"
	"time"
)

const wrkClean = `Running 1s test @ http://127.0.0.1:18777/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.05ms    1.13ms   7.93ms   72.63%
    Req/Sec     0.98k    89.83     1.18k    80.00%
  Latency Distribution
     50%    1.98ms
     75%    2.49ms
     90%    3.28ms
     99%    6.17ms
  980 requests in 1.00s, 3.50MB read
Requests/sec:    979.48
Transfer/sec:      3.49MB
`

const wrkFailing = `Running 1s test @ http://127.0.0.1:18777/nope
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     6.53ms   19.34ms 118.39ms   92.78%
    Req/Sec     1.68k   443.79     2.25k    66.67%
  Latency Distribution
     50%    0.95ms
     75%    1.93ms
     90%    6.48ms
     99%  812.00us
  1580 requests in 1.00s, 802.34KB read
  Socket errors: connect 0, read 2, write 0, timeout 0
  Non-2xx or 3xx responses: 1580
Requests/sec:   1577.34
Transfer/sec:    800.99KB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    WrkResult
		wantErr bool
	}{
		{"clean", wrkClean, WrkResult{RPS: 979.48, P50: 1980 * time.Microsecond, P99: 6170 * time.Microsecond, Requests: 980}, false},
		{"errors", wrkFailing, WrkResult{RPS: 1577.34, P50: 950 * time.Microsecond, P99: 812 * time.Microsecond, Requests: 1580, Non2xx: 1580,
			SocketErrors: "connect 0, read 2, write 0, timeout 0"}, false},
		{"no latency", "  980 requests in 1.00s, 3.50MB read\nRequests/sec:    979.48\n", WrkResult{}, true},
		{"empty", "", WrkResult{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseWrk error = %v, want error %t", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got != tc.want {
				t.Errorf("parseWrk = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"444.00us", 444 * time.Microsecond, false},
		{"1.06ms", 1060 * time.Microsecond, false},
		{"2.00s", 2 * time.Second, false},
		{"1.50m", 90 * time.Second, false},
		{"1.00h", time.Hour, false},
		{"12", 0, true},
		{"xms", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWrkDuration(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseWrkDuration(%q) error = %v, want error %t", tc.in, err, tc.wantErr)
			}
			if got.Round(time.Microsecond) != tc.want {
				t.Errorf("parseWrkDuration(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
