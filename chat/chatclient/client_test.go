package chatclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/chat"
	"caseroom/chat/chatclient"
)

func mustLogin(t *testing.T, s *server, username string) *chatclient.Client {
	t.Helper()
	c, err := chatclient.Login(context.Background(), s.url, username, s.pass[username])
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return c
}

func TestAPI(t *testing.T) {
	s := mustServer(t, "sqlite", chat.HubOptions{})
	ctx := context.Background()
	staff := s.staff()
	a, b, c := mustLogin(t, s, staff[0]), mustLogin(t, s, staff[1]), mustLogin(t, s, staff[2])
	if _, err := chatclient.Login(ctx, s.url, staff[0], "wrong password"); err == nil {
		t.Fatal("login with a wrong password succeeded")
	} else if ae, ok := errors.AsType[*chatclient.APIError](err); !ok || ae.Status != 401 {
		t.Fatalf("wrong password: %v, want a 401 APIError", err)
	}

	room, err := a.CreateRoom(ctx, "协调群", []acl.UserID{b.User().ID})
	if err != nil {
		t.Fatal(err)
	}
	m, dup, err := a.Post(ctx, room.ID, chatclient.PostRequest{ClientID: "c-1", Body: "你好"})
	if err != nil || dup {
		t.Fatalf("post: %v %v", dup, err)
	}
	again, dup, err := a.Post(ctx, room.ID, chatclient.PostRequest{ClientID: "c-1", Body: "你好"})
	if err != nil || !dup || again.Seq != m.Seq {
		t.Fatalf("repeated post: seq %d dup %v err %v; want seq %d dup true", again.Seq, dup, err, m.Seq)
	}
	if _, err := a.Edit(ctx, room.ID, m.Seq, "您好"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Retract(ctx, room.ID, m.Seq); err != nil {
		t.Fatal(err)
	}
	add, err := a.AddMembers(ctx, room.ID, []acl.UserID{c.User().ID}, "")
	if err != nil || add.Kind != chat.MemberAdd {
		t.Fatalf("add: %+v %v", add, err)
	}
	if _, err := a.RemoveMember(ctx, room.ID, c.User().ID); err != nil {
		t.Fatal(err)
	}
	hist, err := b.History(ctx, room.ID, chatclient.HistoryQuery{After: 0, Limit: 100})
	if err != nil || len(hist) != 6 {
		t.Fatalf("history: %d entries, %v; want 6", len(hist), err)
	}
	if hist[1].Retracted == 0 || hist[1].Body != "" {
		t.Fatalf("retracted entry shows %+v", hist[1])
	}
	if got, err := b.MarkRead(ctx, room.ID, 3); err != nil || got != 3 {
		t.Fatalf("mark read: %d %v", got, err)
	}
	_, err = c.History(ctx, room.ID, chatclient.HistoryQuery{})
	if ae, ok := errors.AsType[*chatclient.APIError](err); !ok || ae.Status != 404 {
		t.Fatalf("history as a removed member: %v, want a 404 APIError", err)
	}
	old := a.RefreshToken()
	if err := a.Refresh(ctx); err != nil || a.RefreshToken() == old {
		t.Fatalf("refresh: %v (token rotated: %v)", err, a.RefreshToken() != old)
	}
	if _, err := chatclient.FromRefreshToken(ctx, s.url, old, chatclient.Options{}); err == nil {
		t.Fatal("a used refresh token was accepted again")
	}
}

// TestConnectAndResume: live frames, then a drop, entries posted while away,
// and a resume from the tracked positions that brings exactly those.
func TestConnectAndResume(t *testing.T) {
	s := mustServer(t, "sqlite", chat.HubOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	staff := s.staff()
	a, b := mustLogin(t, s, staff[0]), mustLogin(t, s, staff[1])
	room, err := a.CreateRoom(ctx, "协调群", []acl.UserID{b.User().ID})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := b.Connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := conn.Ready(); r.User != b.User().ID || len(r.Rooms) != 1 || r.Rooms[0].Room != room.ID {
		t.Fatalf("ready %s", r.Raw)
	}
	next := func(c *chatclient.Conn, typ string) chatclient.Frame {
		t.Helper()
		for {
			f, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			if f.Type == typ {
				return f
			}
		}
	}
	next(conn, "caught_up")
	m, _, err := a.Post(ctx, room.ID, chatclient.PostRequest{Body: "一"})
	if err != nil {
		t.Fatal(err)
	}
	if f := next(conn, "message"); f.Seq != m.Seq || f.Message.Body != "一" {
		t.Fatalf("live frame %s", f.Raw)
	}
	if err := conn.Typing(ctx, room.ID); err != nil {
		t.Fatal(err)
	}
	if f := next(conn, "typing"); f.User != b.User().ID {
		t.Fatalf("typing %s", f.Raw)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	next(conn, "pong")
	conn.Drop()
	var want []chat.Seq
	for range 5 {
		m, _, err := a.Post(ctx, room.ID, chatclient.PostRequest{Body: "离线时"})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.Seq)
	}
	conn2, err := b.Resume(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var got []chat.Seq
	for {
		f, err := conn2.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == "message" {
			got = append(got, f.Seq)
		}
		if f.Type == "caught_up" {
			break
		}
	}
	if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("resumed with %v, want %v", got, want)
	}
	if s := conn2.Since()[room.ID]; s != want[len(want)-1] {
		t.Fatalf("position %d, want %d", s, want[len(want)-1])
	}
	conn2.Close()
}
