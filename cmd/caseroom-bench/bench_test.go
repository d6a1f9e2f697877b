package main

import (
	"slices"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://127.3.2.1:1", "http://localhost:8080", "http://[::1]:8080"} {
		if err := checkLoopback(u); err != nil {
			t.Errorf("checkLoopback(%q) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://192.168.1.2", "http://example.com", "https://127.0.0.1", "ws://127.0.0.1"} {
		if err := checkLoopback(u); err == nil {
			t.Errorf("checkLoopback(%q) = nil, want a refusal", u)
		}
	}
}

func TestEachObject(t *testing.T) {
	var got []string
	eachObject([]byte(`[{"type":"message","room":"r","seq":1,"message":{"body":"a}\"{"}},{"type":"typing"}]`), func(o []byte) {
		got = append(got, string(o))
	})
	want := []string{`{"type":"message","room":"r","seq":1,"message":{"body":"a}\"{"}}`, `{"type":"typing"}`}
	if !slices.Equal(got, want) {
		t.Errorf("eachObject = %q, want %q", got, want)
	}
}

func TestFrameTracksSeqs(t *testing.T) {
	c := &child{byID: map[string]*room{}}
	cn := &conn{c: c, last: map[string]int64{"r1": 4}}
	cn.frame([]byte(`{"type":"ready","user":"u","rooms":[{"room":"r1","head":9},{"room":"r2","head":2}]}`), 0)
	for _, f := range []string{
		`{"type":"message","room":"r1","seq":5,"message":{"client_id":"b100.0.1"}}`,
		`{"type":"message","room":"r2","seq":1,"message":{}}`,
		`{"type":"message","room":"r1","seq":5,"message":{}}`, // duplicate
		`{"type":"message","room":"r1","seq":7,"message":{}}`, // gap
	} {
		cn.frame([]byte(f), 1000)
	}
	if c.dups.Load() != 1 || c.gaps.Load() != 1 || cn.last["r1"] != 7 || cn.last["r2"] != 1 || c.deliveries.Load() != 1 {
		t.Errorf("dups %d gaps %d last %v deliveries %d, want 1 1 map[r1:7 r2:1] 1", c.dups.Load(), c.gaps.Load(), cn.last, c.deliveries.Load())
	}
}
