package chatws_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"caseroom/chat"
	"caseroom/chat/chatws"
)

const protocolDoc = "../../docs/protocol.md"

type example struct {
	line int
	dir  string // "client" or "server"
	body []byte
}

// examples returns every ```json block of docs/protocol.md; a json block that
// does not say its direction is an error.
func examples(t *testing.T) []example {
	t.Helper()
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	lines := strings.Split(string(doc), "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok || !strings.HasPrefix(info, "json") {
			continue
		}
		f := strings.Fields(info)
		if len(f) != 2 || (f[1] != "client" && f[1] != "server") {
			t.Errorf("protocol.md:%d: a json block must be marked \"json client\" or \"json server\"", i+1)
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		out = append(out, example{line: start + 1, dir: f[1], body: []byte(strings.Join(body, "\n"))})
	}
	if len(out) == 0 {
		t.Fatal("protocol.md has no examples")
	}
	return out
}

// serverFrameTypes maps each server frame kind to the Go type the server
// encodes it from.
var serverFrameTypes = map[string]func() any{
	"ready":        func() any { return new(chat.ReadyFrame) },
	"message":      func() any { return new(chat.MessageFrame) },
	"caught_up":    func() any { return new(chat.CaughtUpFrame) },
	"typing":       func() any { return new(chat.TypingFrame) },
	"read":         func() any { return new(chat.ReadFrame) },
	"presence":     func() any { return new(chat.PresenceFrame) },
	"room_removed": func() any { return new(chat.RoomRemovedFrame) },
	"error":        func() any { return new(chatws.ErrorFrame) },
	"pong":         func() any { return new(chatws.PongFrame) },
}

// decodeServerFrame decodes one server frame strictly into its Go type.
func decodeServerFrame(b []byte) (string, error) {
	var head struct{ Type string }
	if err := json.Unmarshal(b, &head); err != nil {
		return "", err
	}
	mk, ok := serverFrameTypes[head.Type]
	if !ok {
		return head.Type, fmt.Errorf("no server frame type %q", head.Type)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	v := mk()
	if err := d.Decode(v); err != nil {
		return head.Type, err
	}
	if d.More() {
		return head.Type, fmt.Errorf("trailing data")
	}
	return head.Type, nil
}

// TestProtocolExamplesDecode: every client example decodes with the server's
// own client-frame decoder; every server example (or each frame of an array)
// decodes strictly into the type the server sends it from.
func TestProtocolExamplesDecode(t *testing.T) {
	for _, ex := range examples(t) {
		switch ex.dir {
		case "client":
			if _, err := chatws.DecodeClientFrame(ex.body); err != nil {
				t.Errorf("protocol.md:%d: client example does not decode: %v", ex.line, err)
			}
		case "server":
			frames := []json.RawMessage{ex.body}
			if bytes.HasPrefix(bytes.TrimSpace(ex.body), []byte("[")) {
				if err := json.Unmarshal(ex.body, &frames); err != nil {
					t.Errorf("protocol.md:%d: %v", ex.line, err)
					continue
				}
			}
			for _, f := range frames {
				if typ, err := decodeServerFrame(f); err != nil {
					t.Errorf("protocol.md:%d: server %q example does not decode: %v", ex.line, typ, err)
				}
			}
		}
	}
}

// TestProtocolDocumentsEveryServerFrame: each kind the server sends has its
// section and an example, and the decoder above knows each; each client kind
// has an example; each close code is in the table.
func TestProtocolDocumentsEveryServerFrame(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	exampled := map[string]map[string]bool{"client": {}, "server": {}}
	for _, ex := range examples(t) {
		frames := []json.RawMessage{ex.body}
		if bytes.HasPrefix(bytes.TrimSpace(ex.body), []byte("[")) {
			json.Unmarshal(ex.body, &frames)
		}
		for _, f := range frames {
			var head struct{ Type string }
			json.Unmarshal(f, &head)
			exampled[ex.dir][head.Type] = true
		}
	}
	for _, typ := range chatws.ServerFrames {
		if !regexp.MustCompile(`(?m)^### ` + regexp.QuoteMeta(typ) + `$`).Match(doc) {
			t.Errorf("protocol.md has no section \"### %s\" for the server frame %q", typ, typ)
		}
		if !exampled["server"][typ] {
			t.Errorf("protocol.md has no server example of %q", typ)
		}
		if serverFrameTypes[typ] == nil {
			t.Errorf("the test's decoder does not know the server frame %q", typ)
		}
	}
	for typ := range serverFrameTypes {
		if !slices.Contains(chatws.ServerFrames, typ) {
			t.Errorf("%q decodes but is not in chatws.ServerFrames", typ)
		}
	}
	for typ := range exampled["server"] {
		if !slices.Contains(chatws.ServerFrames, typ) {
			t.Errorf("protocol.md shows a server frame %q the server does not send", typ)
		}
	}
	for _, typ := range []string{chatws.FrameHello, chatws.FrameTyping, chatws.FrameRead, chatws.FramePing} {
		if !exampled["client"][typ] {
			t.Errorf("protocol.md has no client example of %q", typ)
		}
	}
	for _, code := range []websocket.StatusCode{
		chatws.CloseBadHello, chatws.CloseUnauthorized, chatws.CloseTokenExpired, chatws.CloseRevoked,
		chatws.CloseHelloTimeout, chatws.CloseSlowConsumer, websocket.StatusGoingAway,
		websocket.StatusMessageTooBig, websocket.StatusInternalError,
	} {
		if !bytes.Contains(doc, fmt.Appendf(nil, "\n| %d |", int(code))) {
			t.Errorf("protocol.md's close code table lacks %d", int(code))
		}
	}
}
