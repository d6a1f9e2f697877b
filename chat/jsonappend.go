package chat

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"caseroom/acl"
)

// The bytes of a log entry that every post produces — the hashed canonical
// form, the frame for members' sockets and the answer to the poster — are
// written here by hand rather than by encoding/json's reflection, which cost
// the server about 5 µs per post. The output is byte for byte what
// json.Marshal gives (TestAppendersMatchEncodingJSON holds them to it), so
// stored hashes and clients see no difference. An entry with a payload, or a
// time json.Marshal would refuse, takes encoding/json's path: payloads are
// rarer, and json.Marshal compacts and escapes them.

// appendView appends the JSON of v, as json.Marshal writes it, and reports
// whether it could; it cannot when v has a payload or an unencodable time.
func appendView(b []byte, v *MessageView) ([]byte, bool) {
	if len(v.Payload) > 0 || !jsonTime(v.CreatedAt) || (v.OccurredAt != nil && !jsonTime(*v.OccurredAt)) {
		return b, false
	}
	b = appendEntryHead(b, v.Room, v.Seq, v.Kind, v.Sender, v.SenderUnit)
	b = appendStringField(b, `,"client_id":`, v.ClientID)
	b = appendSeqField(b, `,"reply_to":`, v.ReplyTo)
	if len(v.Mentions) > 0 {
		b = append(b, `,"mentions":`...)
		b = appendJSONUsers(b, v.Mentions)
	}
	b = appendStringField(b, `,"body":`, v.Body)
	b = appendSeqField(b, `,"target":`, v.Target)
	if v.OccurredAt != nil {
		b = append(b, `,"occurred_at":`...)
		b = appendJSONTime(b, *v.OccurredAt)
	}
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, v.CreatedAt)
	b = appendSeqField(b, `,"edited":`, v.Edited)
	b = appendSeqField(b, `,"retracted":`, v.Retracted)
	b = append(b, `,"hash":`...)
	b = appendJSONString(b, v.Hash)
	return append(b, '}'), true
}

// encodedSize is about what the JSON of m takes, escapes aside: the room is
// written twice in a frame.
func encodedSize(m *Message) int {
	n := 224 + 2*len(m.Room) + len(m.Kind) + len(m.Sender) + len(m.SenderUnit) + len(m.ClientID) + len(m.Body) + 2*len(m.Hash)
	for _, u := range m.Mentions {
		n += len(u) + 3
	}
	return n
}

// EncodeView returns the JSON of View(m), as json.Marshal writes it.
func EncodeView(m *Message) []byte {
	v := View(m)
	if b, ok := appendView(make([]byte, 0, encodedSize(m)), &v); ok {
		return b
	}
	b, _ := json.Marshal(v)
	return b
}

// appendCanonical appends m.Canonical() for an entry without a payload, and
// reports whether it could.
func appendCanonical(b []byte, m *Message) ([]byte, bool) {
	if len(m.Payload) > 0 {
		return b, false
	}
	b = appendEntryHead(b, m.Room, m.Seq, m.Kind, m.Sender, m.SenderUnit)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, m.ClientID)
	b = append(b, `,"reply_to":`...)
	b = strconv.AppendInt(b, int64(m.ReplyTo), 10)
	b = append(b, `,"mentions":`...)
	b = appendJSONUsers(b, m.Mentions)
	b = append(b, `,"body":`...)
	b = appendJSONString(b, m.Body)
	b = append(b, `,"payload":null,"target":`...)
	b = strconv.AppendInt(b, int64(m.Target), 10)
	b = append(b, `,"occurred_at":`...)
	var occurred int64
	if !m.OccurredAt.IsZero() {
		occurred = m.OccurredAt.UnixMicro()
	}
	b = strconv.AppendInt(b, occurred, 10)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, m.CreatedAt.UnixMicro(), 10)
	return append(b, '}'), true
}

// appendEntryHead opens the object both forms begin with: room, seq, kind,
// sender and sender_unit.
func appendEntryHead(b []byte, room RoomID, seq Seq, kind Kind, sender acl.UserID, unit acl.UnitID) []byte {
	b = append(b, `{"room":`...)
	b = appendJSONString(b, string(room))
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(kind))
	b = append(b, `,"sender":`...)
	b = appendJSONString(b, string(sender))
	b = append(b, `,"sender_unit":`...)
	return appendJSONString(b, string(unit))
}

// appendStringField appends key (`,"name":`) and s, or nothing when s is
// empty (omitempty).
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// appendSeqField appends key (`,"name":`) and n, or nothing when n is 0
// (omitempty).
func appendSeqField(b []byte, key string, n Seq) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), int64(n), 10)
}

// appendJSONUsers appends ids as a JSON array; none is [].
func appendJSONUsers(b []byte, ids []acl.UserID) []byte {
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, string(id))
	}
	return append(b, ']')
}

// jsonTime reports whether time.Time's MarshalJSON accepts t.
func jsonTime(t time.Time) bool {
	y := t.Year()
	if y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off%60 == 0 && off > -24*3600 && off < 24*3600
}

// appendJSONTime appends t as time.Time's MarshalJSON writes it (RFC 3339
// with as many fraction digits as needed); jsonTime(t) must hold.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does by
// default: <, > and & escaped for HTML, control characters as \b \f \n \r \t
// or \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
