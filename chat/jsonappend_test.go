package chat

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"caseroom/acl"
)

// TestAppendersMatchEncodingJSON holds the hand-written encoders to
// encoding/json, byte for byte: the canonical form is what stored hashes
// cover, and the frame and the view are what clients parse.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	// Strings that take every branch of the escaping.
	pieces := []string{"", "a", "关于张三涉嫌盗窃一案", "\"", "\\", "<script>", "&amp;", ">", "\b\f\n\r\t",
		"\x00\x01\x1f\x7f", "\u2028\u2029", "\xff", "\xe4\xb8", "é", "😀", "/", "'", "\u00a0", "\ufffd", "a\x80b"}
	str := func(r *rand.Rand) string {
		var b []byte
		for range r.IntN(5) {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
		return string(b)
	}
	t0 := time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	times := []time.Time{{}, t0, t0.Add(123456789), t0.Add(time.Microsecond), t0.Add(100 * time.Millisecond),
		t0.In(time.FixedZone("CST", 8*3600)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), t0.In(time.FixedZone("odd", 8*3600+30))}
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := range 20000 {
		m := &Message{
			Room: RoomID(str(r)), Seq: Seq(r.Int64N(1 << 40)), Kind: Kind(str(r)), Sender: acl.UserID(str(r)),
			SenderUnit: acl.UnitID(str(r)), ClientID: str(r), Body: str(r),
			CreatedAt: times[r.IntN(len(times))], OccurredAt: times[r.IntN(len(times))],
			Hash: []byte(str(r)),
		}
		if r.IntN(3) == 0 {
			m.ReplyTo, m.Target = Seq(r.Int64N(100)), Seq(r.Int64N(100))
		}
		if r.IntN(4) == 0 {
			m.Edited, m.Retracted = Seq(r.Int64N(3)), Seq(r.Int64N(3))
		}
		switch r.IntN(3) {
		case 0:
			m.Mentions = []acl.UserID{}
		case 1:
			m.Mentions = []acl.UserID{acl.UserID(str(r)), acl.UserID(str(r))}
		}
		if r.IntN(10) == 0 {
			m.Payload = json.RawMessage(`{"a": "<b>", "c": [1, 2]}`)
		}

		if got, want := m.Canonical(), m.canonicalJSON(); !bytes.Equal(got, want) {
			t.Fatalf("message %d: Canonical\n got %s\nwant %s", i, got, want)
		}
		wantView, _ := json.Marshal(View(m))
		if got := EncodeView(m); !bytes.Equal(got, wantView) {
			t.Fatalf("message %d: EncodeView\n got %s\nwant %s", i, got, wantView)
		}
		wantFrame, _ := json.Marshal(MessageFrame{Type: "message", Room: m.Room, Seq: m.Seq, Message: View(m)})
		if got := EncodeMessage(m); !bytes.Equal(got, wantFrame) {
			t.Fatalf("message %d: EncodeMessage\n got %s\nwant %s", i, got, wantFrame)
		}
		v := View(m)
		if _, ok := appendView(nil, &v); ok {
			fast++
		}
	}
	// Most messages must have taken the hand-written path, or this compared
	// encoding/json with itself.
	if fast < 10000 {
		t.Errorf("%d of 20000 messages took the hand-written path, want most", fast)
	}
	m := &Message{Room: "r", Seq: 1, Kind: Text, Sender: "u", SenderUnit: "x", Body: "b", CreatedAt: t0}
	if _, ok := appendCanonical(nil, m); !ok {
		t.Error("appendCanonical refused a plain text message")
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	m := &Message{Room: "r_bfux6rhvnipac26c", Seq: 123456, Kind: Text, Sender: "u000123", SenderUnit: "150102-police",
		ClientID: "b1764230000000000000.0.123456", Body: "关于张三涉嫌盗窃一案，请于本周五前补充侦查材料并移送审查起诉。",
		CreatedAt: time.Now().UTC(), Hash: bytes.Repeat([]byte{0xab}, 32)}
	b.Run("hand-written", func(b *testing.B) {
		for b.Loop() {
			EncodeMessage(m)
			m.Canonical()
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(MessageFrame{Type: "message", Room: m.Room, Seq: m.Seq, Message: View(m)})
			m.canonicalJSON()
		}
	})
}
