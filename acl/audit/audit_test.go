package audit

import (
	"errors"
	"testing"
	"time"
)

func chain(n int) []Entry {
	var out []Entry
	var prev []byte
	for i := 1; i <= n; i++ {
		r := Record{Stream: StreamAuth, At: time.UnixMicro(int64(i) * 1000), Actor: "u1", Action: "auth.login", Outcome: OK}
		h := Next(prev, r.Canonical(int64(i)))
		out = append(out, Entry{Record: r, Seq: int64(i), Prev: prev, Hash: h})
		prev = h
	}
	return out
}

func TestVerifyFindsFirstBadSeq(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func([]Entry) []Entry
		wantSeq int64 // 0: the chain verifies
	}{
		{"untouched", func(e []Entry) []Entry { return e }, 0},
		{"update", func(e []Entry) []Entry { e[2].Actor = "mallory"; return e }, 3},
		{"delete", func(e []Entry) []Entry { return append(e[:1], e[2:]...) }, 2},
		{"insert", func(e []Entry) []Entry {
			extra := e[1]
			return append(e[:2], append([]Entry{extra}, e[2:]...)...)
		}, 3},
		{"reorder", func(e []Entry) []Entry { e[1], e[2] = e[2], e[1]; return e }, 2},
		{"rehash one entry", func(e []Entry) []Entry {
			e[3].Detail = `{"x":1}`
			e[3].Hash = Next(e[3].Prev, e[3].Canonical(e[3].Seq))
			return e
		}, 5},
	}
	for _, tt := range tests {
		err := Verify(tt.tamper(chain(6)))
		var ce *ChainError
		switch {
		case tt.wantSeq == 0 && err != nil:
			t.Errorf("%s: Verify = %v, want nil", tt.name, err)
		case tt.wantSeq != 0 && !errors.As(err, &ce):
			t.Errorf("%s: Verify = %v, want a *ChainError", tt.name, err)
		case tt.wantSeq != 0 && ce.Seq != tt.wantSeq:
			t.Errorf("%s: Verify names seq %d, want %d (%v)", tt.name, ce.Seq, tt.wantSeq, err)
		}
	}
}
