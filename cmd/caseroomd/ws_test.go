package main

import (
	"context"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/chat"
	"caseroom/chat/chatclient"
)

// TestTwoUsersChatLive is "two users chatting" against the real binary's run:
// the prosecutor is connected over the WebSocket when the police officer opens a
// room with them and posts; the prosecutor sees the room appear and the message
// arrive live, answers, and a reconnect resumes with nothing missed.
func TestTwoUsersChatLive(t *testing.T) {
	s := mustServe(t, testEnv(t, ""), "-demo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	police, err := chatclient.Login(ctx, s.base, "police.150102.officer1", s.accounts["police.150102.officer1"])
	if err != nil {
		t.Fatal(err)
	}
	prosecutor, err := chatclient.Login(ctx, s.base, "procuratorate.150102.officer1", s.accounts["procuratorate.150102.officer1"])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := prosecutor.Connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	room, err := police.CreateRoom(ctx, "新城区 盗窃案 协调", []acl.UserID{"procuratorate.150102.officer1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := police.Post(ctx, room.ID, chatclient.PostRequest{ClientID: "p-1", Body: "案卷已整理，请审阅"}); err != nil {
		t.Fatal(err)
	}
	got := waitMessage(t, ctx, conn, room.ID, func(m *chat.MessageView) bool { return m.Kind == chat.Text })
	if got.Body != "案卷已整理，请审阅" || got.Sender != "police.150102.officer1" {
		t.Fatalf("prosecutor received %+v, want the police officer's message", got)
	}
	if _, _, err := prosecutor.Post(ctx, room.ID, chatclient.PostRequest{ClientID: "q-1", Body: "收到"}); err != nil {
		t.Fatal(err)
	}
	since := conn.Since()
	conn.Close()
	// While the prosecutor is away the police officer posts twice more.
	for _, body := range []string{"补充材料一", "补充材料二"} {
		if _, _, err := police.Post(ctx, room.ID, chatclient.PostRequest{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	conn2, err := prosecutor.Connect(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	// Exactly what was missed, in order, once: every entry after since.
	missed, err := prosecutor.History(ctx, room.ID, chatclient.HistoryQuery{After: since[room.ID]})
	if err != nil {
		t.Fatal(err)
	}
	if len(missed) < 2 {
		t.Fatalf("history after %d has %d entries, want at least the two posted while away", since[room.ID], len(missed))
	}
	for _, want := range missed {
		got := waitMessage(t, ctx, conn2, room.ID, func(*chat.MessageView) bool { return true })
		if got.Seq != want.Seq || got.Body != want.Body {
			t.Fatalf("resume delivered seq %d %q, want seq %d %q", got.Seq, got.Body, want.Seq, want.Body)
		}
	}
}

// waitMessage returns the next message frame of room that match accepts.
func waitMessage(t *testing.T, ctx context.Context, c *chatclient.Conn, room chat.RoomID, match func(*chat.MessageView) bool) *chat.MessageView {
	t.Helper()
	for {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for a message in %s: %v", room, err)
		}
		if f.Type == "message" && f.Room == room && match(f.Message) {
			return f.Message
		}
	}
}
